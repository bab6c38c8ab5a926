#pragma once
// The decoder's building blocks as plain functions, so tests can check them against hand-computed
// values.
#include <torch/types.h>

namespace treerpo::model {

// transformers' Qwen2RMSNorm: normalise in float32, cast back, then scale by `weight`.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// RoPE tables for integer `positions` (any shape P): cos and sin of shape [P..., head_dim] in
// `dtype`, angle(p, i) = p * theta^(-2 (i mod head_dim/2) / head_dim), computed in float32 like
// transformers.
std::pair<torch::Tensor, torch::Tensor>
rope_tables(const torch::Tensor& positions, int64_t head_dim, double theta, torch::Dtype dtype);

// Rotate-half RoPE: x * cos + rotate_half(x) * sin with rotate_half([a, b]) = [-b, a] along the
// last dimension; cos/sin broadcast against x.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin);

} // namespace treerpo::model
