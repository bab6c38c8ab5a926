#pragma once
// AdamW with torch.optim.AdamW's update (decoupled weight decay, bias-corrected moments), for
// weights of either dtype, in two state precisions (train.optimizer):
//   adamw:      float32 moments. A bfloat16 weight also keeps a Kahan compensation buffer: bf16
//               resolves 1 part in 256, so an update of lr 1e-6 on a weight of 1e-2 rounds away
//               entirely in a plain bf16 step and the model never moves; the buffer carries the
//               lost low-order part into the next step, so the stored weight tracks the float32
//               trajectory (as optimi's Kahan-summed AdamW). 2 + 2 + 8 + 2 bytes per bf16
//               parameter (weight, grad, moments, compensation).
//   adamw-bf16: bfloat16 moments, and bf16 weights, both stored with stochastic rounding (the
//               float32 result rounds up with probability equal to its distance from the lower
//               bf16 neighbour, so each stored value is unbiased and updates far below the bf16
//               spacing still move the weights on average, as in Zamirai et al. 2020 and optimi's
//               StableAdamW). 2 + 2 + 4 bytes per bf16 parameter; no float32 copy of anything.
// The update runs parameter by parameter in chunks (optimizer_memory.h): no temporary the size
// of the embedding. The stochastic draws come from (seed, step, parameter): a resumed run draws
// the same bits, so it is bitwise the run that did not stop.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace treerpo::train {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool bf16_state = false; // adamw-bf16
  uint64_t seed = 0;       // the stochastic-rounding draws (adamw-bf16)
};

class AdamW {
public:
  AdamW(std::vector<torch::Tensor> params, const AdamWOptions& options);

  // One update at learning rate `lr` from the parameters' .grad (a parameter without one is
  // skipped, as torch does).
  void step(double lr);
  // Drops every gradient (undefined, its memory freed): the rollout does not hold them.
  void release_grads();
  int64_t steps() const { return steps_; }

  // The state (moments, compensation; the step count and train.optimizer in its metadata) as a
  // safetensors file (checkpoint.h: optimizer.state). load() validates the whole file first, then
  // copies it into the state tensor by tensor through the host (never a second copy of the state
  // on the device); it throws bad_input naming `path` when the file does not hold this
  // optimiser's state for these parameters.
  void save(const std::string& path) const;
  void load(const std::string& path);
  // The same state from a LibTorch archive, the format of optimizer.pt that earlier versions
  // wrote (adamw_archive.cpp): read so their checkpoints resume.
  void load_archive(const std::string& path);

private:
  std::vector<torch::Tensor> params_, exp_avg_, exp_avg_sq_, compensation_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

// Rounds float32 `x` to bfloat16 stochastically with `generator`: the result is one of x's two
// bf16 neighbours, the upper with probability (x - lower) / (upper - lower). Exact values stay.
torch::Tensor stochastic_round_to_bf16(const torch::Tensor& x, at::Generator& generator);

} // namespace treerpo::train
