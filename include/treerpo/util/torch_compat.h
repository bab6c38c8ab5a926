#pragma once
// The one place where LibTorch 1.13 (Debian, CPU) and 2.x (PyTorch wheels, CUDA) differ for us.
// Everything else in the project calls these names and never tests TORCH_VERSION_* itself.
#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <torch/version.h>

#define TREERPO_TORCH_AT_LEAST(major, minor)                                                       \
  (TORCH_VERSION_MAJOR > (major) ||                                                                \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace treerpo {

// Scaled dot-product attention, softmax(q k^T / sqrt(head_dim)) v, where `mask` (bool,
// broadcastable to [..., Tq, Tk]) is true where a query may attend. Every query row must allow at
// least one key. LibTorch 2.x has a fused kernel (flash / memory-efficient where the mask
// allows); 1.13 does not, so the math runs here, with the softmax in float32 as transformers' eager
// attention does.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& mask) {
#if TREERPO_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v, mask);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)).to(at::kFloat) * scale;
  scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  return at::matmul(at::softmax(scores, -1).to(q.scalar_type()), v);
#endif
}

} // namespace treerpo
