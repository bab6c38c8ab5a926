#pragma once
// What the SFT and RL loops share: the run directory (effective config, resume from the newest
// complete checkpoint, refusal of a changed config), the model and tokenizer, AdamW with the lr
// schedule, gradient clipping, NaN/Inf skipping, checkpoints and the SIGINT/SIGTERM stop request;
// in a data-parallel job (torchrun's variables) also the world of ranks: the gradient sum before
// every update, rank 0 alone writing, and the refusal of ranks whose config or weights differ.
#include <memory>
#include <optional>
#include <string>

#include "treerpo/config/config.h"
#include "treerpo/dist/world.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/train/adamw.h"
#include "treerpo/train/checkpoint.h"
#include "treerpo/util/autocast.h"

namespace treerpo::train {

struct RunOptions {
  bool force = false; // resume even though the configuration changed
  std::string resume; // a checkpoint folder to resume from; empty = the run directory's newest
};

torch::Dtype parse_dtype(const std::string& dtype);
torch::Device parse_device(const std::string& device);

class TrainingRun {
public:
  // kind: "sft" or "rl". Loads the model from the checkpoint being resumed, else from model.path.
  TrainingRun(const Config& config, std::string kind, const RunOptions& options);
  ~TrainingRun();
  TrainingRun(const TrainingRun&) = delete;
  TrainingRun& operator=(const TrainingRun&) = delete;

  model::Qwen2& model() { return *model_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  const Config& config() const { return config_; }
  const std::string& run_dir() const { return config_.checkpoint.dir; }
  int64_t start_step() const { return start_step_; }
  torch::Device device() const { return device_; }
  dist::World& world() { return world_; }
  // The training forward's autocast (train.autocast: bfloat16 over float32 weights); wrap the
  // forward in `AutocastScope scope(run.device().type(), run.autocast())`.
  AutocastState autocast() const { return {config_.train.autocast, at::kBFloat16}; }

  // Sums the accumulated gradients over the ranks, clips them, checks them and the loss (the
  // step's loss over every rank), and steps AdamW at `lr`. Returns the gradient norm, or nothing
  // when the step was skipped for a non-finite loss or gradient (aborting with a runtime failure
  // after train.max_bad_steps such steps in a row). Gradients are zeroed either way.
  std::optional<double> apply_gradients(double lr, double loss);

  // Tokens sampled by rollouts over the whole run (all sessions): train.token_budget counts these.
  int64_t sampled_tokens() const { return sampled_tokens_; }
  void add_sampled_tokens(int64_t n) { sampled_tokens_ += n; }

  // Rank 0 writes checkpoints/step-<step> (model folder, optimizer.pt, trainer_state.json)
  // atomically, after every rank has shown it holds the same weights. Returns the folder.
  std::string checkpoint(int64_t step);
  // True once SIGINT or SIGTERM arrived: the loop checkpoints and stops at the end of its step.
  static bool stop_requested();
  // stop_requested() on any rank; every rank calls it at the same point of every step, so all
  // ranks stop after the same step.
  bool stop_agreed();
  // Seconds this process spent in gradient collectives, and the bytes it sent into them.
  double communication_s() const { return communication_s_; }
  int64_t communication_bytes() const { return communication_bytes_; }

private:
  // In a job of several ranks: every rank's configuration, resumed checkpoint and loaded weights
  // equal rank 0's, else bad input naming the rank.
  void check_ranks_agree(const std::string& resume);

  Config config_;
  std::string kind_;
  torch::Device device_;
  torch::Dtype dtype_;
  dist::World world_;
  std::unique_ptr<model::Qwen2> model_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<AdamW> optimizer_;
  Checkpoints checkpoints_;
  int64_t start_step_ = 0;
  int64_t bad_steps_ = 0;
  int64_t sampled_tokens_ = 0;
  double communication_s_ = 0;
  int64_t communication_bytes_ = 0;
};

} // namespace treerpo::train
