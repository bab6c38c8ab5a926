#pragma once
// The launcher of the CUDA paged decode attention kernel (paged_attention.cu). Plain types only, so
// nvcc never compiles LibTorch headers; src/model/paged_attention.cpp checks shapes, allocates
// the workspace and passes the current stream.
#include <cstdint>

#include <cuda_runtime_api.h>

namespace treerpo::model::cuda {

enum class Dtype : int { Float32, BFloat16, Float16 };

struct PagedDecodeArgs {
  Dtype dtype = Dtype::Float32;
  const void* q = nullptr;               // [batch, heads, head_dim], contiguous
  const void* key_pool = nullptr;        // [blocks, block_tokens, kv_heads, head_dim], contiguous
  const void* value_pool = nullptr;      // same layout as key_pool
  const int32_t* block_tables = nullptr; // [batch, table_width]
  const int32_t* lengths = nullptr;      // [batch], 1 <= lengths[b] <= table_width * block_tokens
  void* out = nullptr;                   // [batch, heads, head_dim], contiguous, dtype
  int64_t batch = 0, heads = 0, kv_heads = 0, head_dim = 0, block_tokens = 0, table_width = 0;
  int64_t max_length = 0; // the largest lengths[b] (known on the host): sets the partition count
  float scale = 1.0f;     // 1 / sqrt(head_dim)
  float* workspace = nullptr; // paged_decode_workspace_floats(...) floats; null when that is 0
};

// Head sizes the kernel is built for.
bool paged_decode_supports_head_dim(int64_t head_dim);
// Float32 scratch the launch needs for its split-K partial results (0: no split).
int64_t paged_decode_workspace_floats(int64_t batch, int64_t heads, int64_t head_dim,
                                      int64_t max_length);
// Enqueues the kernel(s) on `stream`; returns the launch error (cudaSuccess when none).
cudaError_t paged_decode_attention(const PagedDecodeArgs& args, cudaStream_t stream);

} // namespace treerpo::model::cuda
