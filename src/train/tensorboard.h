#pragma once
// TensorBoard event files without a protobuf library: TFRecord framing of hand-encoded `Event`
// messages (tensorflow/core/util/event.proto, tensorflow/core/framework/summary.proto).
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace treerpo::train {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum TFRecord uses.
uint32_t crc32c(const void* data, size_t size);

// TFRecord stores ((crc >> 15) | (crc << 17)) + 0xa282ead8 so that a CRC of data containing CRCs
// stays well distributed.
uint32_t masked_crc32c(const void* data, size_t size);

// One TFRecord: uint64 length, masked CRC of the length, data, masked CRC of the data (little
// endian).
std::string tfrecord(const std::string& data);

// Event{wall_time, file_version}: the first record of every event file.
std::string file_version_event(double wall_time);

// Event{wall_time, step, session_log{status START}}: marks where a (resumed) run starts writing;
// TensorBoard then drops the events with step >= `step` it read from earlier files of the run.
std::string session_start_event(double wall_time, int64_t step);

// Event{wall_time, step, summary{value{tag, simple_value}...}}: scalars of one step.
std::string scalars_event(double wall_time, int64_t step,
                          const std::vector<std::pair<std::string, float>>& scalars);

// Appends events to RUN_DIR/events.out.tfevents.<unix time>.<hostname>.treerpo, flushed per step.
// The file opens with the file version and a session start at `first_step`.
class EventFileWriter {
public:
  EventFileWriter(const std::string& run_dir, double wall_time, int64_t first_step);
  void write_scalars(double wall_time, int64_t step,
                     const std::vector<std::pair<std::string, float>>& scalars);
  const std::string& path() const { return path_; }

private:
  void append(const std::string& event);

  std::string path_;
  std::ofstream out_;
};

} // namespace treerpo::train
