#include "treerpo/util/cuda_syncs.h"

#include <string>

#include <c10/util/Exception.h>

#include "treerpo/util/error.h"

#ifdef TREERPO_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace treerpo {

#ifdef TREERPO_WITH_CUDA

namespace {

// The message c10::cuda::warn_or_error_on_sync raises (c10/cuda/CUDAFunctions.cpp).
bool is_sync_warning(const c10::Warning& w) {
  return w.msg().find("called a synchronizing CUDA operation") != std::string::npos;
}

} // namespace

struct CudaSyncCounter::Impl : c10::WarningHandler {
  c10::WarningHandler* previous = nullptr;
  c10::cuda::SyncDebugMode previous_mode = c10::cuda::SyncDebugMode::L_DISABLED;
  int64_t syncs = 0;

  void process(const c10::Warning& w) override {
    if (!is_sync_warning(w)) {
      previous->process(w);
      return;
    }
    ++syncs;
    // An enclosing counter counts it too; LibTorch's own handler would print it (it is ours to
    // count, not the user's to read).
    if (dynamic_cast<Impl*>(previous) != nullptr) previous->process(w);
  }
};

CudaSyncCounter::CudaSyncCounter() : impl_(std::make_unique<Impl>()) {
  c10::cuda::WarningState& state = c10::cuda::warning_state();
  impl_->previous_mode = state.get_sync_debug_mode();
  // A mode of "error" stays: a synchronisation then throws instead of being counted.
  if (impl_->previous_mode == c10::cuda::SyncDebugMode::L_DISABLED) {
    state.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_WARN);
  }
  impl_->previous = c10::WarningUtils::get_warning_handler();
  c10::WarningUtils::set_warning_handler(impl_.get());
}

CudaSyncCounter::~CudaSyncCounter() {
  c10::WarningUtils::set_warning_handler(impl_->previous);
  c10::cuda::warning_state().set_sync_debug_mode(impl_->previous_mode);
}

int64_t CudaSyncCounter::count() const {
  return impl_->syncs;
}

bool CudaSyncCounter::available() {
  return true;
}

#else

struct CudaSyncCounter::Impl {};

CudaSyncCounter::CudaSyncCounter() {
  throw runtime_failure("this build has no CUDA", "counting CUDA synchronisations");
}

CudaSyncCounter::~CudaSyncCounter() = default;

int64_t CudaSyncCounter::count() const {
  return 0;
}

bool CudaSyncCounter::available() {
  return false;
}

#endif

} // namespace treerpo
