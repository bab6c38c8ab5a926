// metrics.jsonl and the TensorBoard scalars of each training step.
#include "treerpo/train/metrics.h"

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tensorboard.h"
#include "treerpo/util/error.h"
#include "treerpo/util/log.h"

namespace treerpo::train {
namespace {

namespace fs = std::filesystem;

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Keeps the complete lines with "step" <= resume_step. Only the last line can be torn by a kill
// (every line is written and flushed whole), so an unterminated last line is dropped; a broken
// line elsewhere means someone edited the file, and the user must decide.
void truncate_for_resume(const std::string& path, int64_t resume_step) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw runtime_failure("cannot read the metrics file", path, "check its permissions");
  std::stringstream whole;
  whole << in.rdbuf();
  const std::string text = whole.str();

  std::string kept;
  bool dropped = false;
  size_t begin = 0;
  for (int64_t line_no = 1; begin < text.size(); ++line_no) {
    const size_t end = text.find('\n', begin);
    if (end == std::string::npos) {
      spdlog::warn("{}:{}: dropping the unfinished last line", path, line_no);
      dropped = true;
      break;
    }
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    const auto record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded() || !record.is_object() || !record.contains("step") ||
        !record["step"].is_number_integer())
      throw bad_input("metrics line is not a JSON object with an integer \"step\"",
                      path + ":" + std::to_string(line_no),
                      "fix or delete that line, or start a new run directory");
    if (record["step"].get<int64_t>() <= resume_step)
      kept += line + '\n';
    else
      dropped = true;
  }
  if (!dropped) return;

  // Write beside and rename, so a kill during the rewrite leaves the old or the new file whole.
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << kept;
    out.flush();
    if (!out)
      throw runtime_failure("cannot rewrite the metrics file", temporary, "check free disk space");
  }
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error)
    throw runtime_failure("cannot replace the metrics file: " + error.message(), path,
                          "check the run directory's permissions");
}

} // namespace

MetricsWriter::MetricsWriter(const std::string& run_dir, bool tensorboard, int64_t resume_step) {
  std::error_code error;
  fs::create_directories(run_dir, error);
  if (error)
    throw runtime_failure("cannot create the run directory: " + error.message(), run_dir,
                          "choose a writable checkpoint.dir");
  jsonl_path_ = (fs::path(run_dir) / "metrics.jsonl").string();
  if (fs::exists(jsonl_path_)) truncate_for_resume(jsonl_path_, resume_step);
  jsonl_.open(jsonl_path_, std::ios::binary | std::ios::app);
  if (!jsonl_)
    throw runtime_failure("cannot open the metrics file", jsonl_path_,
                          "check that the run directory is writable");
  // Each writer starts a new event file; its session start at the first replayed step makes
  // TensorBoard forget the previous files' events from there on, as metrics.jsonl does.
  if (tensorboard)
    events_ = std::make_unique<EventFileWriter>(run_dir, unix_seconds(), resume_step + 1);
}

MetricsWriter::~MetricsWriter() = default;

const std::string& MetricsWriter::events_path() const {
  static const std::string none;
  return events_ ? events_->path() : none;
}

void MetricsWriter::write(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  const double now = unix_seconds();
  nlohmann::ordered_json record;
  record["step"] = step;
  record["time"] = now;
  std::vector<std::pair<std::string, float>> scalars;
  scalars.reserve(values.size());
  for (const auto& [key, value] : values) {
    if (record.contains(key))
      throw runtime_failure("metric key \"" + key + "\" is reserved or repeated",
                            jsonl_path_ + ": step " + std::to_string(step),
                            "give every metric its own name");
    record[key] = value;
    scalars.emplace_back(key, static_cast<float>(value));
  }
  // dump() writes NaN and infinities as null, which keeps every line valid JSON.
  jsonl_ << record.dump() << '\n';
  jsonl_.flush();
  if (!jsonl_)
    throw runtime_failure("cannot write the metrics file", jsonl_path_, "check free disk space");
  if (events_) events_->write_scalars(now, step, scalars);
}

} // namespace treerpo::train
