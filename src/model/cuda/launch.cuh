#pragma once
// The one place the CUDA sources launch a kernel: nvcc's chevrons, or, where a kernel's source is
// compiled for the CPU simulator the tests run (tests/common/cuda_sim_builtins.h defines
// TREERPO_CUDA_SIM), the simulator's launch. Returns the launch's error.
#include <utility>

#include <cuda_runtime.h>

namespace treerpo::cuda_launch {

template <typename... P, typename... A>
cudaError_t launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, cudaStream_t stream,
                          A&&... args) {
#ifdef TREERPO_CUDA_SIM
  (void)stream;
  return ::treerpo::cuda_sim::launch(kernel, grid, block, std::forward<A>(args)...);
#else
  kernel<<<grid, block, 0, stream>>>(std::forward<A>(args)...);
  return cudaGetLastError();
#endif
}

} // namespace treerpo::cuda_launch
