#pragma once
// Checkpoints of a run directory: RUN_DIR/checkpoints/step-N/ is a Hugging Face model folder
// (transformers and `treerpo-train eval --model` load it as is) plus optimizer.state and
// trainer_state.json. A checkpoint is written into checkpoints/.tmp-step-N and renamed when
// complete, so a step-N folder is always whole. Its SHA256SUMS (util/checksums.h), written last,
// tells a folder damaged since (a flipped byte, a truncated file) from an intact one.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "treerpo/config/config.h"

namespace treerpo::train {

// The optimiser state (AdamW::save): a safetensors file, named without the .safetensors suffix so
// that loaders which take every *.safetensors of a folder as weights (vLLM) skip it.
inline constexpr const char* kOptimizerStateFile = "optimizer.state";
// What versions before it wrote (a LibTorch archive, AdamW::load_archive); read, never written.
inline constexpr const char* kLegacyOptimizerStateFile = "optimizer.pt";

struct TrainerState {
  std::string kind; // "rl" or "sft": a run directory holds one kind
  int64_t step = 0; // optimiser steps completed
  // Every random draw derives from (seed, step) or (seed, epoch), so step and cursor are the whole
  // RNG state.
  int64_t seed = 0;
  std::string config_hash;
  int64_t sampled_tokens = 0; // rollout tokens sampled so far (train.token_budget)
  // The instruction set of ATen's CPU kernels that computed a CPU run ("AVX512", "AVX2", ...; empty
  // on CUDA and in checkpoints of earlier versions): a resume under another one continues, but
  // not bitwise as an uninterrupted run would.
  std::string cpu_capability;
};

class Checkpoints {
public:
  Checkpoints(std::string run_dir, int64_t keep);
  // Newest intact checkpoint folder, if any; removes leftovers of interrupted writes. Damaged ones
  // (checksums differ or are missing) are skipped with a warning; when every one is damaged,
  // bad_input.
  std::optional<std::string> latest() const;
  // `write(dir)` fills a temporary folder; its checksums are recorded, it is renamed to
  // checkpoints/step-<step> and older checkpoints beyond `keep` are deleted. Returns the final
  // folder. When writing fails (a full disk), the temporary folder is removed and a runtime
  // failure names the checkpoint the run can resume from.
  std::string save(int64_t step, const std::function<void(const std::string& dir)>& write) const;
  // The folder `save(step, ...)` writes.
  std::string path(int64_t step) const;

private:
  std::string dir_;
  int64_t keep_;
};

void write_trainer_state(const std::string& dir, const TrainerState& state);
TrainerState read_trainer_state(const std::string& dir);

// Hash of everything that changes a run's results (model, data, rollout, train sections, sft
// included); checkpoint cadence, evaluation and logging may change on resume.
std::string config_hash(const Config& config);

} // namespace treerpo::train
