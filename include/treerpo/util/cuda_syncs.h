#pragma once
// Host-device synchronisations made by LibTorch's CUDA code, counted: the ground truth beside the
// rollout's own count of its device-to-host transfers (util/host_transfer.h), which cannot see a
// synchronisation hidden inside an operator (an .item(), a nonzero, a boolean-mask index, a copy
// to pageable host memory, a stream or device synchronize).
//
// It uses LibTorch's sync debug mode (Python's torch.cuda.set_sync_debug_mode("warn")): every such
// synchronisation calls c10::cuda::warn_or_error_on_sync first, which in that mode raises a
// warning. While a counter lives, the mode is "warn" and the calling thread's warning handler
// counts those warnings (passing them on only to an enclosing counter, so nested counters both
// count) and passes every other warning on unchanged. Synchronisations the CUDA driver makes on its
// own (cudaMalloc, cudaFree) are not counted. Only the calling thread's are: LibTorch's warning
// handler is per thread (the mode is not: another thread's synchronisations meanwhile are warned of
// by its own handler), and every CUDA call of a rollout is made on the thread that grows it.
#include <cstdint>
#include <memory>

namespace treerpo {

class CudaSyncCounter {
public:
  // Counting starts; throws runtime_failure in a build without CUDA (see available()).
  CudaSyncCounter();
  // Restores the mode and the handler that were in force before.
  ~CudaSyncCounter();
  CudaSyncCounter(const CudaSyncCounter&) = delete;
  CudaSyncCounter& operator=(const CudaSyncCounter&) = delete;

  // Synchronisations counted so far.
  int64_t count() const;
  // Whether this build can count them (it links LibTorch's CUDA library).
  static bool available();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace treerpo
