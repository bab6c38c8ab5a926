#pragma once
// AdamW with torch.optim.AdamW's update (decoupled weight decay, bias-corrected moments), for
// weights of either dtype. Moments are float32. A bfloat16 weight also keeps a Kahan compensation
// buffer: bf16 resolves 1 part in 256, so an update of lr 1e-6 on a weight of 1e-2 rounds away
// entirely in a plain bf16 step and the model never moves; the buffer carries the lost low-order
// part into the next step, so the stored weight tracks the float32 trajectory (as optimi's
// Kahan-summed AdamW). Cost per bf16 parameter: 2 (weight) + 2 (grad) + 8 (moments) + 2
// (compensation) bytes.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace treerpo::train {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class AdamW {
public:
  AdamW(std::vector<torch::Tensor> params, const AdamWOptions& options);

  // One update at learning rate `lr` from the parameters' .grad (a parameter without one is
  // skipped, as torch does).
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return steps_; }

  // The state (step count, moments, compensation) as a LibTorch archive. load() throws bad_input
  // naming `path` when the file does not hold this optimiser's state for these parameters.
  void save(const std::string& path) const;
  void load(const std::string& path);

private:
  std::vector<torch::Tensor> params_, exp_avg_, exp_avg_sq_, compensation_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

} // namespace treerpo::train
