#pragma once
// A CUDA simulator for tests on machines without a GPU: a kernel's own CUDA C++ source, compiled by
// the host compiler after this header, runs on the CPU with every thread of a block as a fiber, so
// it can be held equal to its CPU twin in every test run (the idea of Triton's interpreter,
// TRITON_INTERPRET=1, and Numba's NUMBA_ENABLE_CUDASIM, for CUDA C++).
//
// What it models, and checks:
// - blockIdx, threadIdx, blockDim, gridDim; the blocks of a launch run one after another;
// - __syncthreads(): every thread of the block waits there, and all of them must reach the same
//   call (a thread that exited, or waits at another barrier, is a fault);
// - __shfl_xor_sync with a full mask: all 32 lanes of the warp must reach the same call (the
//   warp-uniform control flow a full-mask shuffle requires); a lane that exited, waits elsewhere or
//   names a mask other than 0xffffffff is a fault;
// - shared arrays (TREERPO_SHARED, src/model/cuda/shared_memory.cuh; a plain __shared__ does not
//   compile here), one per kernel instantiation, shared by the block's threads and poisoned (every
//   bit set: NaN, or -1) when the block's first thread reaches the declaration, so a read of what
//   no thread of this block wrote (a previous block's value on a GPU, or garbage) shows;
// - __ldg reads: aligned to the type (16 bytes for float4 / uint4), and, while a ReadableMemory is
//   alive, inside one of the buffers it names.
// What it does not model: timing, memory ordering beyond the barriers, warp collectives other than
// __shfl_xor_sync, dynamic shared memory, streams (a launch runs at once), and anything the host
// compiler does differently from nvcc (CUDA code puns types through pointers: build with
// -fno-strict-aliasing).
//
// This header is the host's side (launch, faults, readable memory); a translation unit that
// compiles kernel source includes cuda_sim_builtins.h first, then the kernel's .cu file, which
// launches through treerpo::cuda_sim::launch (src/model/cuda/launch.cuh).
#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace treerpo::cuda_sim {

// The indices of the thread running now.
uint3 thread_index();
uint3 block_index();
dim3 block_dim();
dim3 grid_dim();

namespace detail {
// The warp collective behind __shfl_xor_sync: this lane's bits in, its partner's out.
uint64_t shuffle_xor(unsigned mask, uint64_t bits, int lane_mask, int width, int line);
void sync_threads(int line);
// A shared array's declaration reached: poisons it if it is the first of this block's threads.
void shared_array(void* p, size_t bytes);
void check_read(const void* p, size_t bytes, size_t align);
// Runs `body` once for every thread of every block of the grid.
cudaError_t run_grid(dim3 grid, dim3 block, const std::function<void()>& body);
} // namespace detail

// Launches `kernel` with copies of `args`, as the chevrons would; returns cudaSuccess, the
// launch's configuration error, or cudaErrorLaunchFailure with the fault in last_fault().
template <typename... P, typename... A>
cudaError_t launch(void (*kernel)(P...), dim3 grid, dim3 block, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "a kernel launch passes every parameter");
  const std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  return detail::run_grid(grid, block, [&] { std::apply(kernel, params); });
}

// What the last faulted launch did wrong (block, thread, what), or "" after a good one.
const std::string& last_fault();

// While alive, __ldg may read only inside these buffers (address, bytes), and those of any other
// ReadableMemory alive on this thread; with none alive, anywhere. It counts the bytes read from
// each.
class ReadableMemory {
public:
  ReadableMemory(std::initializer_list<std::pair<const void*, size_t>> buffers);
  ~ReadableMemory();
  // Bytes __ldg read from the i-th of these buffers since this object was made.
  uint64_t bytes_read(size_t i) const;
  ReadableMemory(const ReadableMemory&) = delete;
  ReadableMemory& operator=(const ReadableMemory&) = delete;

private:
  size_t first_, count_; // where its buffers stand in the thread's list
};

} // namespace treerpo::cuda_sim
