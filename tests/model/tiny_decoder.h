#pragma once
// The tiny Qwen2 (tiny_model.h) with random float32 weights on the CPU, and the reference its
// cached paths are held to: the last token's logits of the full forward.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "tiny_model.h"
#include "treerpo/model/qwen2.h"

namespace treerpo::model::testing {

inline Qwen2 tiny_model(uint64_t seed = 11) {
  return Qwen2::random(tiny_config(false), seed, torch::kFloat32, torch::kCPU);
}

inline torch::Tensor last_logits(Qwen2& model, const std::vector<int32_t>& ids) {
  torch::NoGradGuard no_grad;
  return model.forward(ids)[static_cast<int64_t>(ids.size()) - 1];
}

} // namespace treerpo::model::testing
