#pragma once
// Autocast (torch.autocast) state and scope for one device type, the LibTorch 2.4+ API (keyed by
// device type). The project builds against LibTorch 2.x only; CMake refuses older versions.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

namespace treerpo {

// Ops on autocast's allow-list (matmul, linear, ...) run in `dtype` while weights keep their own
// dtype.
struct AutocastState {
  bool enabled = false;
  at::ScalarType dtype = at::kBFloat16;
};

inline AutocastState autocast_state(at::DeviceType device) {
  return {at::autocast::is_autocast_enabled(device), at::autocast::get_autocast_dtype(device)};
}

inline void set_autocast_state(at::DeviceType device, const AutocastState& state) {
  at::autocast::set_autocast_enabled(device, state.enabled);
  at::autocast::set_autocast_dtype(device, state.dtype);
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
