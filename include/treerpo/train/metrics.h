#pragma once
// Per-step training metrics of one run directory: metrics.jsonl (one JSON object a line) and,
// optionally, a TensorBoard event file with one scalar per numeric value.
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace treerpo::train {

class EventFileWriter;

class MetricsWriter {
public:
  // Appends to RUN_DIR/metrics.jsonl (created with RUN_DIR when missing), flushed per line so a
  // SIGKILL loses at most the line being written; with `tensorboard`, also writes
  // RUN_DIR/events.out.tfevents.<unix time>.<hostname>.treerpo.
  // An existing metrics.jsonl keeps only its lines with "step" <= resume_step (the later steps are
  // replayed by the resumed run; the default -1 starts over) and drops a torn last line. The new
  // event file tells TensorBoard to drop older files' events from step resume_step + 1 on.
  MetricsWriter(const std::string& run_dir, bool tensorboard, int64_t resume_step = -1);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Writes {"step": step, "time": unix seconds, <values in order>} as one line, and each value as
  // a TensorBoard scalar tagged by its key ("reward/mean"). Keys must be unique and not "step" or
  // "time".
  void write(int64_t step, const std::vector<std::pair<std::string, double>>& values);

  const std::string& jsonl_path() const { return jsonl_path_; }
  // Empty without TensorBoard.
  const std::string& events_path() const;

private:
  std::string jsonl_path_;
  std::ofstream jsonl_;
  std::unique_ptr<EventFileWriter> events_;
};

} // namespace treerpo::train
