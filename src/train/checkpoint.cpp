#include "treerpo/train/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "treerpo/util/checksums.h"
#include "treerpo/util/error.h"
#include "treerpo/util/json_integer.h"

namespace fs = std::filesystem;

namespace treerpo::train {
namespace {

constexpr const char* kStateFile = "trainer_state.json";

// step-N folders (complete checkpoints), oldest first.
std::vector<std::pair<int64_t, fs::path>> complete_checkpoints(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  if (!fs::exists(dir)) return found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("step-", 0) != 0) continue;
    try {
      found.emplace_back(std::stoll(name.substr(5)), entry.path());
    } catch (const std::exception&) {
      continue; // not ours
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

} // namespace

Checkpoints::Checkpoints(std::string run_dir, int64_t keep)
    : dir_((fs::path(run_dir) / "checkpoints").string()), keep_(keep) {}

std::optional<std::string> Checkpoints::latest() const {
  if (!fs::exists(dir_)) return std::nullopt;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().filename().string().rfind(".tmp-", 0) == 0) fs::remove_all(entry.path());
  }
  auto found = complete_checkpoints(dir_);
  if (found.empty()) return std::nullopt;
  // Newest first; damaged ones are passed over (with a warning each) for the newest intact one.
  std::vector<std::pair<fs::path, std::string>> skipped;
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    std::optional<std::string> problem = fs::exists(it->second / kChecksumsFile)
                                             ? checksum_problem(it->second.string())
                                             : std::string(kChecksumsFile) + " is missing";
    if (!problem) {
      for (const auto& [dir, why] : skipped)
        spdlog::warn("skipping damaged checkpoint {}: {}", dir.string(), why);
      return it->second.string();
    }
    skipped.emplace_back(it->second, *problem);
  }
  // Starting over would silently discard the run: the user decides.
  throw bad_input(fmt::format("no intact checkpoint to resume from ({} damaged; {}: {})",
                              skipped.size(), skipped.front().first.filename().string(),
                              skipped.front().second),
                  dir_, "pass --resume with a model folder, or choose a new checkpoint.dir");
}

std::string Checkpoints::save(int64_t step,
                              const std::function<void(const std::string& dir)>& write) const {
  fs::path tmp = fs::path(dir_) / fmt::format(".tmp-step-{}", step);
  fs::path final_dir = path(step);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    write(tmp.string());
    write_checksums(tmp.string());
  } catch (const std::exception& e) {
    // A full disk: free what the partial write took; the previous checkpoints stay as they were.
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    std::string cause = e.what();
    cause = cause.substr(0, cause.find('\n')); // LibTorch appends a backtrace
    auto found = complete_checkpoints(dir_);
    throw runtime_failure(fmt::format("checkpoint step-{} not saved ({})", step, cause), dir_,
                          found.empty()
                              ? "free disk space and re-run"
                              : fmt::format("free disk space and re-run: it resumes from {}",
                                            found.back().second.filename().string()));
  }
  fs::remove_all(final_dir); // a re-run of the same step after a resume
  fs::rename(tmp, final_dir);
  auto found = complete_checkpoints(dir_);
  for (size_t i = 0; i + keep_ < found.size(); ++i) fs::remove_all(found[i].second);
  return final_dir.string();
}

void write_trainer_state(const std::string& dir, const TrainerState& state) {
  nlohmann::json j = {{"kind", state.kind},
                      {"step", state.step},
                      {"seed", state.seed},
                      {"config_hash", state.config_hash},
                      {"sampled_tokens", state.sampled_tokens}};
  if (!state.cpu_capability.empty()) j["cpu_capability"] = state.cpu_capability;
  std::ofstream out(fs::path(dir) / kStateFile);
  out << j.dump(2) << "\n";
  if (!out) throw runtime_failure("cannot write the trainer state", dir, "check free disk space");
}

TrainerState read_trainer_state(const std::string& dir) {
  fs::path path = fs::path(dir) / kStateFile;
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (!in || j.is_discarded() || !j.is_object()) {
    throw bad_input("unreadable trainer state", path.string(),
                    "delete this checkpoint folder or resume from another");
  }
  // Integers of int64 range only: get<int64_t> of 4.4e51 is undefined behaviour and of 2.5 a
  // silent truncation (found by fuzzing trainer_state.json).
  for (const char* key : {"step", "seed", "sampled_tokens"}) {
    if (j.contains(key) && !is_int64(j[key])) {
      throw bad_input(std::string("\"") + key + "\" is not an integer", path.string(),
                      "delete this checkpoint folder or resume from another");
    }
  }
  TrainerState state;
  try {
    state = {j.at("kind").get<std::string>(),       j.at("step").get<int64_t>(),
             j.at("seed").get<int64_t>(),           j.at("config_hash").get<std::string>(),
             j.value("sampled_tokens", int64_t{0}), j.value("cpu_capability", std::string())};
  } catch (const nlohmann::json::exception& e) {
    throw bad_input(std::string("malformed trainer state: ") + e.what(), path.string());
  }
  if (state.step < 0 || state.sampled_tokens < 0)
    throw bad_input("negative step or sampled_tokens", path.string());
  return state;
}

std::string Checkpoints::path(int64_t step) const {
  return (fs::path(dir_) / fmt::format("step-{}", step)).string();
}

std::string config_hash(const Config& config) {
  Config results = config;
  results.checkpoint = CheckpointConfig{};
  results.eval = EvalConfig{};
  results.log = LogConfig{};
  results.distributed = DistributedConfig{};
  results.explicitly_set.clear();
  // Where the KV cache and the allocator live changes no result (the rollout tests grow the same
  // trees whatever the pool and block sizes): a run may resume under another memory budget.
  results.model.memory_gb = ModelConfig{}.memory_gb;
  results.rollout.kv_cache_tokens = RolloutConfig{}.kv_cache_tokens;
  results.rollout.kv_cache_memory_fraction = RolloutConfig{}.kv_cache_memory_fraction;
  results.rollout.kv_block_tokens = RolloutConfig{}.kv_block_tokens;
  // Only the settings that differ from the defaults: a key added by a later version, at its
  // default, changes no result and must not refuse a resume.
  std::string text = changed_settings(results);
  uint64_t h = 1469598103934665603ULL; // FNV-1a 64
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

} // namespace treerpo::train
