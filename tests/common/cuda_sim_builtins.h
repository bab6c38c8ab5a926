#pragma once
// The CUDA built-ins for kernel source compiled by the host compiler (cuda_sim.h says what they
// model). Include this header first in such a translation unit, before the kernel's .cu file: the
// CUDA headers come in here, before the built-ins' macros, and the .cu's own includes of them are
// then no-ops. Never include it beside LibTorch or other code: it defines threadIdx, blockIdx,
// blockDim, gridDim, __shared__ and TREERPO_SHARED as macros, and CUDA's integer min and max in
// the global namespace.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda_sim.h"

#define TREERPO_CUDA_SIM 1

// Shared arrays: TREERPO_SHARED (src/model/cuda/shared_memory.cuh) only, so that each is poisoned
// at the start of every block; a plain __shared__ fails to compile, naming the macro.
#undef __shared__
#define __shared__ declare_shared_arrays_with_TREERPO_SHARED
#define TREERPO_SHARED(type, name, dims)                                                           \
  static thread_local type name dims;                                                              \
  ::treerpo::cuda_sim::detail::shared_array(name, sizeof name)
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#define threadIdx (::treerpo::cuda_sim::thread_index())
#define blockIdx (::treerpo::cuda_sim::block_index())
#define blockDim (::treerpo::cuda_sim::block_dim())
#define gridDim (::treerpo::cuda_sim::grid_dim())

template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32,
                  int line = __builtin_LINE()) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable_v<T>,
                "a shuffle moves at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof value);
  bits = ::treerpo::cuda_sim::detail::shuffle_xor(mask, bits, lane_mask, width, line);
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline void __syncthreads(int line = __builtin_LINE()) {
  ::treerpo::cuda_sim::detail::sync_threads(line);
}

template <typename T> T __ldg(const T* p) {
  ::treerpo::cuda_sim::detail::check_read(p, sizeof(T), alignof(T));
  return *p;
}

// CUDA's integer min and max, which device code calls unqualified.
inline int min(int a, int b) {
  return a < b ? a : b;
}
inline long min(long a, long b) {
  return a < b ? a : b;
}
inline long long min(long long a, long long b) {
  return a < b ? a : b;
}
inline int max(int a, int b) {
  return a > b ? a : b;
}
inline long max(long a, long b) {
  return a > b ? a : b;
}
inline long long max(long long a, long long b) {
  return a > b ? a : b;
}
