#pragma once
// The one place where LibTorch 1.13 (Debian, CPU) and 2.x (PyTorch wheels, CUDA) differ for us.
// Everything else in the project calls these names and never tests TORCH_VERSION_* itself.
#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
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

// Autocast (torch.autocast) for one device type: ops on the allow-list (matmul, linear, ...) run in
// `dtype` while weights stay in their own dtype. LibTorch 2.4 keyed the switches by device type;
// 1.13 has one set of functions for CUDA ("gpu") and one for the CPU.
struct AutocastState {
  bool enabled = false;
  at::ScalarType dtype = at::kBFloat16;
};

inline AutocastState autocast_state(at::DeviceType device) {
#if TREERPO_TORCH_AT_LEAST(2, 4)
  return {at::autocast::is_autocast_enabled(device), at::autocast::get_autocast_dtype(device)};
#else
  if (device == at::kCUDA)
    return {at::autocast::is_enabled(), at::autocast::get_autocast_gpu_dtype()};
  return {at::autocast::is_cpu_enabled(), at::autocast::get_autocast_cpu_dtype()};
#endif
}

inline void set_autocast_state(at::DeviceType device, const AutocastState& state) {
#if TREERPO_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(device, state.enabled);
  at::autocast::set_autocast_dtype(device, state.dtype);
#else
  if (device == at::kCUDA) {
    at::autocast::set_enabled(state.enabled);
    at::autocast::set_autocast_gpu_dtype(state.dtype);
  } else {
    at::autocast::set_cpu_enabled(state.enabled);
    at::autocast::set_autocast_cpu_dtype(state.dtype);
  }
#endif
}

// A scope with autocast set to `state` on `device` (a disabled state turns it off), restoring the
// previous state on exit. As torch.autocast's __exit__, the outermost scope drops the cache of
// casted weights, so an optimiser step between two scopes is never hidden by a stale bf16 copy.
class AutocastScope {
public:
  AutocastScope(at::DeviceType device, const AutocastState& state)
      : device_(device), previous_(autocast_state(device)) {
    set_autocast_state(device_, state);
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set_autocast_state(device_, previous_);
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

private:
  at::DeviceType device_;
  AutocastState previous_;
};

} // namespace treerpo
