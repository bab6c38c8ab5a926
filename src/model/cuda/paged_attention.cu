// Paged decode attention on CUDA, the twin of paged_decode_attention_cpu
// (src/model/paged_attention.cpp): one query token per sequence, keys and values read in place from
// the block pool [blocks, block_tokens, kv_heads, head_dim] through int32 block tables.
//
// One block of kThreads threads attends one (sequence, kv head, key partition) for up to
// kMaxHeadsPerBlock query heads of the kv head's GQA group, so each key and value row is read once
// for the whole group. A row is split across kLanes lanes, one 16-byte load each; a warp reads
// 32 / kLanes rows at once. Every lane keeps its heads' queries, an online softmax state (running
// max, sum, weighted values) and its slice of the output in float32 registers. The states of the
// lanes, then of the warps, merge at the end of the partition. Long sequences split their keys
// into partitions, each block writing its unnormalised state to the workspace, and a second kernel
// merges them; a single partition writes the output directly.
#include <cmath>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "launch.cuh"
#include "paged_attention_cuda.h"
#include "shared_memory.cuh"

namespace treerpo::model::cuda {
namespace {

using cuda_launch::launch_kernel;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
// Keys per partition. With the batches decode runs (64-256 sequences, two kv heads, ~1K tokens)
// 256 gives every SM several blocks; the merge kernel's cost is small beside the key reads.
constexpr int kPartitionTokens = 256;
// Query heads one block holds in registers; a larger group is split across blocks (each reads the
// keys again), a smaller one runs the instantiation of the next power of two.
constexpr int kMaxHeadsPerBlock = 8;
// Scores are kept in the log2 domain (log2(e) folded into the query scale): exp2 is one hardware
// instruction and the softmax is the same.
constexpr float kLog2e = 1.4426950408889634f;
// Grid y and z are limited to 65535 blocks.
constexpr int64_t kMaxGridYZ = 65535;

// Elements of T in one 16-byte load.
template <typename T> constexpr int kVec = 16 / static_cast<int>(sizeof(T));

__device__ inline void load_floats(const float* p, float (&out)[4]) {
  const float4 f = __ldg(reinterpret_cast<const float4*>(p));
  out[0] = f.x;
  out[1] = f.y;
  out[2] = f.z;
  out[3] = f.w;
}

__device__ inline void load_floats(const __nv_bfloat16* p, float (&out)[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  const auto* pairs = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(pairs[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

__device__ inline void load_floats(const __half* p, float (&out)[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  const auto* pairs = reinterpret_cast<const __half2*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(pairs[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

template <typename T> __device__ T from_float(float x);
template <> __device__ inline float from_float<float>(float x) {
  return x;
}
template <> __device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}
template <> __device__ inline __half from_float<__half>(float x) {
  return __float2half(x);
}

// The factor that moves a softmax state with max m onto max m_new >= m; an empty state (m = -inf)
// contributes nothing, even when m_new is -inf too.
__device__ inline float rescale(float m, float m_new) {
  return m == -INFINITY ? 0.0f : exp2f(m - m_new);
}

// Softmax state of one query head over a set of keys: max score m, sum l of exp2(score - m), and
// acc, the values weighted by exp2(score - m) (a slice of the head's dimensions).
template <int N> struct SoftmaxState {
  float m = -INFINITY, l = 0.0f, acc[N] = {};

  __device__ void add(float score, const float (&v)[N]) {
    // Rescale only when the max grows, which after the first keys is rare.
    if (score > m) {
      const float c = rescale(m, score);
      l *= c;
#pragma unroll
      for (int e = 0; e < N; ++e) acc[e] *= c;
      m = score;
    }
    const float w = exp2f(score - m);
    l += w;
#pragma unroll
    for (int e = 0; e < N; ++e) acc[e] += w * v[e];
  }

  __device__ void merge(float m2, float l2, const float (&acc2)[N]) {
    const float m_new = fmaxf(m, m2);
    const float a = rescale(m, m_new), b = rescale(m2, m_new);
    l = l * a + l2 * b;
#pragma unroll
    for (int e = 0; e < N; ++e) acc[e] = acc[e] * a + acc2[e] * b;
    m = m_new;
  }
};

// Launch-wide values the launcher derives from PagedDecodeArgs.
struct Split {
  int group = 1;       // query heads per kv head
  int head_chunks = 1; // blocks per kv head (group / heads per block, rounded up)
  int partitions = 1;  // key partitions per sequence
  float q_scale = 1.0f;
};

// The workspace: unnormalised outputs [rows, partitions, head_dim], then maxima and sums
// [rows, partitions] each, rows = batch * heads.
struct Workspace {
  float *acc, *m, *l;
  __device__ Workspace(float* w, int64_t rows, int partitions, int head_dim)
      : acc(w), m(w + rows * partitions * head_dim), l(m + rows * partitions) {}
};

template <typename T, int D, int HB>
__global__ void __launch_bounds__(kThreads) attend_partition(PagedDecodeArgs a, Split s) {
  constexpr int kV = kVec<T>;
  constexpr int kLanes = D / kV;            // lanes that read one row
  constexpr int kRowsPerWarp = 32 / kLanes; // rows a warp reads at once
  constexpr int kRowsPerStep = kWarps * kRowsPerWarp;
  const auto* q = static_cast<const T*>(a.q);
  const auto* keys = static_cast<const T*>(a.key_pool);
  const auto* values = static_cast<const T*>(a.value_pool);

  const int b = blockIdx.x, kv = blockIdx.y / s.head_chunks, part = blockIdx.z;
  const int group_first = (blockIdx.y % s.head_chunks) * HB;
  const int heads_here = min(HB, s.group - group_first);
  const int64_t head0 = kv * s.group + group_first;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int dim0 = (lane % kLanes) * kV;
  const int block_tokens = static_cast<int>(a.block_tokens);
  const int32_t* table = a.block_tables + b * a.table_width;
  // Clamped to the table so a bad length cannot read past it.
  const int length =
      static_cast<int>(min(static_cast<int64_t>(a.lengths[b]), a.table_width * a.block_tokens));

  float qf[HB][kV] = {};
  SoftmaxState<kV> state[HB];
#pragma unroll
  for (int h = 0; h < HB; ++h) {
    if (h < heads_here) {
      load_floats(q + ((b * a.heads + head0 + h) * D + dim0), qf[h]);
#pragma unroll
      for (int e = 0; e < kV; ++e) qf[h][e] *= s.q_scale;
    }
  }

  // The block's partitions are part, part + partitions, ...: every key is covered even if
  // max_length was an underestimate.
  for (int start = part * kPartitionTokens; start < length;
       start += s.partitions * kPartitionTokens) {
    const int end = min(start + kPartitionTokens, length);
    // The trip count is the warp's, not the lane's: all 32 lanes take part in every shuffle.
#pragma unroll 2
    for (int first = start + warp * kRowsPerWarp; first < end; first += kRowsPerStep) {
      const int t = first + lane / kLanes;
      const bool valid = t < end;
      float k[kV] = {}, v[kV] = {};
      if (valid) {
        const int64_t block = table[t / block_tokens];
        const int64_t row = (block * block_tokens + t % block_tokens) * a.kv_heads + kv;
        load_floats(keys + row * D + dim0, k);
        load_floats(values + row * D + dim0, v);
      }
#pragma unroll
      for (int h = 0; h < HB; ++h) {
        if (h < heads_here) {
          float score = 0.0f;
#pragma unroll
          for (int e = 0; e < kV; ++e) score += qf[h][e] * k[e];
#pragma unroll
          for (int o = kLanes / 2; o > 0; o /= 2) score += __shfl_xor_sync(0xffffffffu, score, o);
          if (valid) state[h].add(score, v);
        }
      }
    }
  }

  // Merge the rows of a warp: lanes kLanes apart hold the same dimensions of other keys.
#pragma unroll
  for (int o = kLanes; o < 32; o *= 2) {
#pragma unroll
    for (int h = 0; h < HB; ++h) {
      if (h < heads_here) {
        float acc2[kV];
#pragma unroll
        for (int e = 0; e < kV; ++e) acc2[e] = __shfl_xor_sync(0xffffffffu, state[h].acc[e], o);
        const float m2 = __shfl_xor_sync(0xffffffffu, state[h].m, o);
        const float l2 = __shfl_xor_sync(0xffffffffu, state[h].l, o);
        state[h].merge(m2, l2, acc2);
      }
    }
  }

  // Then the warps, through shared memory.
  TREERPO_SHARED(float, warp_m, [kWarps][HB]);
  TREERPO_SHARED(float, warp_l, [kWarps][HB]);
  TREERPO_SHARED(float, warp_acc, [kWarps][HB][D]);
  if (lane < kLanes) {
#pragma unroll
    for (int h = 0; h < HB; ++h) {
      if (h < heads_here) {
        if (lane == 0) {
          warp_m[warp][h] = state[h].m;
          warp_l[warp][h] = state[h].l;
        }
#pragma unroll
        for (int e = 0; e < kV; ++e) warp_acc[warp][h][dim0 + e] = state[h].acc[e];
      }
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < heads_here * D; i += kThreads) {
    const int h = i / D, d = i % D;
    float m = -INFINITY;
    for (int w = 0; w < kWarps; ++w) m = fmaxf(m, warp_m[w][h]);
    float l = 0.0f, acc = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float c = rescale(warp_m[w][h], m);
      l += warp_l[w][h] * c;
      acc += warp_acc[w][h][d] * c;
    }
    const int64_t row = b * a.heads + head0 + h;
    if (s.partitions == 1) {
      static_cast<T*>(a.out)[row * D + d] = from_float<T>(acc / l);
    } else {
      const Workspace ws(a.workspace, a.batch * a.heads, s.partitions, D);
      const int64_t slot = row * s.partitions + part;
      ws.acc[slot * D + d] = acc;
      if (d == 0) {
        ws.m[slot] = m;
        ws.l[slot] = l;
      }
    }
  }
}

// One block per (sequence, query head), one thread per dimension: merges the partitions' states.
template <typename T> __global__ void merge_partitions(PagedDecodeArgs a, int partitions) {
  const int64_t row = blockIdx.x;
  const int d = threadIdx.x, head_dim = blockDim.x;
  const Workspace ws(a.workspace, a.batch * a.heads, partitions, head_dim);
  const float* m = ws.m + row * partitions;
  const float* l = ws.l + row * partitions;
  const float* acc = ws.acc + row * partitions * head_dim + d;
  float m_max = -INFINITY;
  for (int p = 0; p < partitions; ++p) m_max = fmaxf(m_max, m[p]);
  float l_sum = 0.0f, out = 0.0f;
  for (int p = 0; p < partitions; ++p) {
    const float c = rescale(m[p], m_max);
    l_sum += l[p] * c;
    out += acc[p * head_dim] * c;
  }
  static_cast<T*>(a.out)[row * head_dim + d] = from_float<T>(out / l_sum);
}

int partitions_for(int64_t max_length) {
  const int64_t p = (max_length + kPartitionTokens - 1) / kPartitionTokens;
  return static_cast<int>(p < 1 ? 1 : p);
}

template <typename T, int D, int HB> cudaError_t launch(const PagedDecodeArgs& a, cudaStream_t st) {
  Split s;
  s.group = static_cast<int>(a.heads / a.kv_heads);
  s.head_chunks = (s.group + HB - 1) / HB;
  s.partitions = partitions_for(a.max_length);
  s.q_scale = a.scale * kLog2e;
  if (a.kv_heads * s.head_chunks > kMaxGridYZ || s.partitions > kMaxGridYZ) {
    return cudaErrorInvalidConfiguration;
  }
  if (s.partitions > 1 && a.workspace == nullptr) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(a.batch), static_cast<unsigned>(a.kv_heads * s.head_chunks),
                  static_cast<unsigned>(s.partitions));
  cudaError_t err = launch_kernel(attend_partition<T, D, HB>, grid, dim3(kThreads), st, a, s);
  if (err == cudaSuccess && s.partitions > 1) {
    err = launch_kernel(merge_partitions<T>, dim3(static_cast<unsigned>(a.batch * a.heads)),
                        dim3(D), st, a, s.partitions);
  }
  return err;
}

template <typename T, int D>
cudaError_t launch_for_group(const PagedDecodeArgs& a, cudaStream_t st) {
  const int64_t group = a.heads / a.kv_heads;
  if (group == 1) return launch<T, D, 1>(a, st);
  if (group == 2) return launch<T, D, 2>(a, st);
  if (group <= 4) return launch<T, D, 4>(a, st);
  return launch<T, D, kMaxHeadsPerBlock>(a, st);
}

template <typename T> cudaError_t launch_for_head_dim(const PagedDecodeArgs& a, cudaStream_t st) {
  return a.head_dim == 64 ? launch_for_group<T, 64>(a, st) : launch_for_group<T, 128>(a, st);
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

} // namespace

bool paged_decode_supports_head_dim(int64_t head_dim) {
  return head_dim == 64 || head_dim == 128;
}

int64_t paged_decode_workspace_floats(int64_t batch, int64_t heads, int64_t head_dim,
                                      int64_t max_length) {
  const int64_t partitions = partitions_for(max_length);
  return partitions > 1 ? batch * heads * partitions * (head_dim + 2) : 0;
}

cudaError_t paged_decode_attention(const PagedDecodeArgs& a, cudaStream_t stream) {
  if (!paged_decode_supports_head_dim(a.head_dim) || a.kv_heads < 1 || a.heads % a.kv_heads != 0 ||
      a.heads < 1 || a.block_tokens < 1 || a.table_width < 1 || a.batch < 0) {
    return cudaErrorInvalidValue;
  }
  // The 16-byte loads need 16-byte aligned rows (a row is head_dim elements, a multiple of 16
  // bytes, so the base pointers decide).
  if (!aligned16(a.q) || !aligned16(a.key_pool) || !aligned16(a.value_pool)) {
    return cudaErrorMisalignedAddress;
  }
  if (a.batch == 0) return cudaSuccess;
  switch (a.dtype) {
  case Dtype::Float32:
    return launch_for_head_dim<float>(a, stream);
  case Dtype::BFloat16:
    return launch_for_head_dim<__nv_bfloat16>(a, stream);
  case Dtype::Float16:
    return launch_for_head_dim<__half>(a, stream);
  }
  return cudaErrorInvalidValue;
}

} // namespace treerpo::model::cuda
