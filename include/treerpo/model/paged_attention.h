#pragma once
// Decode attention that reads a paged KV cache in place (DESIGN §5; vLLM's paged attention layout):
// one query token per sequence attends to the first lengths[b] positions of its block table, with
// no gather of the live keys and values. The CPU path is a loop over the blocks; the CUDA kernel
// (src/model/cuda/paged_attention.cu) computes the same thing; paged_decode_attention chooses by
// the tensors' device.
#include <cstdint>
#include <string>

#include <torch/types.h>

namespace treerpo::model {

// rollout.decode_attention: `torch` gathers each sequence's blocks for SDPA (LibTorch ops only);
// `paged_kernel` reads the blocks in place.
enum class DecodeAttention { Torch, PagedKernel };
DecodeAttention decode_attention_from_name(const std::string& name);
const char* decode_attention_name(DecodeAttention mode);

// q [B, heads, head_dim] with RoPE applied; key_pool / value_pool [blocks, block_tokens, kv_heads,
// head_dim] (heads a multiple of kv_heads: query head h reads kv head h / (heads / kv_heads));
// block_tables [B, width] int32; lengths [B] int32, 1 <= lengths[b] <= width * block_tokens, the
// query's own key included. All on one device, q and the pools of one floating dtype (float32,
// bfloat16 or float16). Returns softmax(q k^T / sqrt(head_dim)) v over those positions,
// [B, heads, head_dim] in q's dtype, accumulated in float32. `max_length`, the largest length when
// the caller knows it (-1: read from `lengths`, a device synchronisation on a GPU), sets how the
// CUDA kernel splits the keys.
torch::Tensor paged_decode_attention(const torch::Tensor& q, const torch::Tensor& key_pool,
                                     const torch::Tensor& value_pool,
                                     const torch::Tensor& block_tables,
                                     const torch::Tensor& lengths, int64_t max_length = -1);

// The CPU path, callable on CPU tensors whatever the build (tests and the GPU check compare the
// kernel with it).
torch::Tensor paged_decode_attention_cpu(const torch::Tensor& q, const torch::Tensor& key_pool,
                                         const torch::Tensor& value_pool,
                                         const torch::Tensor& block_tables,
                                         const torch::Tensor& lengths);

// Whether the CPU path spreads its (sequence, kv head) pairs over LibTorch's intra-op threads
// (at::parallel_for is serial in a file built without OpenMP). Each pair is computed alone, so the
// result is the same bits whatever the number of threads.
bool paged_decode_attention_cpu_uses_threads();

} // namespace treerpo::model
