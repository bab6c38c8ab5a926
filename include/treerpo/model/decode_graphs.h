#pragma once
// Decode steps of fixed shape, recorded as CUDA graphs (rollout.cuda_graphs; DESIGN §5). A decode
// step launches a few hundred small kernels (28 layers of norms, projections, RoPE, the paged
// attention and the MLP); at the batch sizes of a rollout their launch overhead is a large part of
// the step. A CUDA graph records the step's launches once and replays them with one call.
//
// A graph replays fixed shapes and addresses, so each step is padded to a batch bucket (1, 2, 4,
// 8, then multiples of 8) and its inputs go into one static device buffer. Padding rows decode
// token 0 at position 0 into the cache's scratch block (PagedKvCache::scratch_block), which no
// sequence reads; every block table is max_length wide and the kernel's key partitions are
// sized for max_length (partitions past a sequence's length do nothing). A graph ends at the last
// layer's output; the final norm and the LM head run after it on the real rows only, so no graph
// holds a [bucket, vocab] output. A bucket's graph is captured on its first step (which runs
// eagerly); graphs share one memory pool and live as long as this object (the KV pool's addresses
// are part of them).
//
// Without capture the same fixed-shape step runs eagerly: that is the path on the CPU, where the
// tests hold it equal to Qwen2::decode with the paged kernel; scripts/gpu_check.sh holds the
// replayed graphs equal to it on a GPU.
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "treerpo/model/paged_kv_cache.h"
#include "treerpo/model/qwen2.h"

namespace treerpo::model {

class DecodeGraphs {
public:
  // Steps of up to `max_batch` sequences, each at most `max_length` tokens long after the step.
  // `capture` needs a CUDA cache and model (runtime_failure otherwise).
  DecodeGraphs(const Qwen2& model, PagedKvCache& cache, int64_t max_batch, int64_t max_length,
               bool capture);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // What Qwen2::decode(cache, seqs, tokens, DecodeAttention::PagedKernel) does: appends one token
  // to each sequence (blocks reserved first; runtime_failure when the pool is short, nothing
  // changed then) and returns float32 logits [B, vocab].
  torch::Tensor decode(const std::vector<int64_t>& seqs, const std::vector<int32_t>& tokens);

  // The batch a step of `batch` sequences is padded to.
  static int64_t bucket_for(int64_t batch);
  // Graphs captured so far (0 without capture).
  int64_t graphs() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace treerpo::model
