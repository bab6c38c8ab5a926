#pragma once
// The Qwen2 decoder (transformers' Qwen2ForCausalLM): RMSNorm in float32, rotate-half RoPE,
// grouped-query attention with q/k/v biases, SwiGLU MLP, optionally tied embeddings. Three forward
// paths share one layer stack: batched prefill and one-token decode over a slot KV cache, and the
// packed tree forward for training.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "treerpo/model/config.h"
#include "treerpo/model/packed_tree.h"
#include "treerpo/model/paged_attention.h"
#include "treerpo/model/paged_kv_cache.h"
#include "treerpo/model/tree_levels.h"

namespace treerpo::model {

// Slot-based KV cache: each slot holds one live branch's keys/values for every layer.
class KvCache {
public:
  KvCache(const Qwen2Config& cfg, int64_t slots, int64_t max_tokens, torch::Dtype dtype,
          torch::Device device);
  int64_t slots() const;
  int64_t max_tokens() const;
  int64_t length(int64_t slot) const;  // tokens cached in the slot
  void fork(int64_t src, int64_t dst); // dst becomes a copy of src's prefix (no recompute)
  void release(int64_t slot);          // length -> 0

private:
  friend class Qwen2;
  void check_slot(int64_t slot) const;
  // Per layer: [slots, max_tokens, kv_heads, head_dim].
  std::vector<torch::Tensor> keys_, values_;
  std::vector<int64_t> length_;
};

class Qwen2 {
public:
  // Reads a Hugging Face model folder (config.json + model.safetensors or sharded + index).
  static Qwen2 load(const std::string& dir, torch::Dtype dtype, torch::Device device);
  // Random weights drawn from `seed` (tests, demos, benchmarks).
  static Qwen2 random(const Qwen2Config& cfg, uint64_t seed, torch::Dtype dtype,
                      torch::Device device);
  // HF layout (model.safetensors, or shards + index past max_shard_bytes), config.json,
  // generation_config.json and the source folder's tokenizer files. Writes into `dir` directly: the
  // caller handles tmp-dir + rename atomicity.
  void save(const std::string& dir, int64_t max_shard_bytes = 5LL << 30) const;

  const Qwen2Config& config() const;
  std::vector<torch::Tensor> parameters() const; // trainable, HF order
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const; // HF tensor names

  // (a) Appends each prompt to its slot's cache; float32 logits of each prompt's last token [B,
  // vocab].
  torch::Tensor prefill(KvCache& cache, const std::vector<int64_t>& slots,
                        const std::vector<std::vector<int32_t>>& prompts);
  // (b) One-token decode for many slots at once: float32 logits [B, vocab].
  torch::Tensor decode(KvCache& cache, const std::vector<int64_t>& slots,
                       const std::vector<int32_t>& tokens);
  // The same two over a paged cache: the batch's blocks are reserved first (runtime_failure when
  // the pool is short; nothing changes then), sequences are handles. Decode attention either
  // gathers each sequence's blocks for SDPA (Torch) or reads them in place (PagedKernel).
  torch::Tensor prefill(PagedKvCache& cache, const std::vector<int64_t>& seqs,
                        const std::vector<std::vector<int32_t>>& prompts);
  torch::Tensor decode(PagedKvCache& cache, const std::vector<int64_t>& seqs,
                       const std::vector<int32_t>& tokens,
                       DecodeAttention attention = DecodeAttention::Torch);
  // One-token decode over a paged cache from step tensors already on the device, in fixed shapes
  // and with no host synchronisation (what model/decode_graphs.h records as a CUDA graph). Row b's
  // token ids[b] at positions[b] writes its keys and values to (write_blocks[b],
  // write_offsets[b]) (int64 [B] each), then attends, with the paged kernel, to positions
  // [0, lengths[b]) of its block table tables[b] (int32 [B, W] and [B]); `max_length` >= every
  // length sizes the CUDA kernel's key partitions. The cache's bookkeeping (reserve, commit) is
  // the caller's. Returns the last layer's output [B, hidden]; logits() makes the logits.
  struct DecodeStep {
    torch::Tensor ids, positions, write_blocks, write_offsets, tables, lengths;
  };
  torch::Tensor decode_hidden(PagedKvCache& cache, const DecodeStep& step,
                              int64_t max_length) const;
  // Final norm + LM head, in float32: [..., hidden] -> [..., vocab].
  torch::Tensor logits(const torch::Tensor& hidden) const;
  // (c) Packed tree forward: log p(tokens[i] | ancestors) for every i with parent[i] >= 0 (0 for
  // roots), shape [N], float32, with autograd through everything (ancestors' keys/values included).
  torch::Tensor tree_logprobs(const PackedTree& tree);
  // Full forward (no cache) of one sequence: float32 logits [T, vocab]; the reference for the
  // others.
  torch::Tensor forward(const std::vector<int32_t>& ids);

  // Off by default. When on, tree_logprobs runs each decoder layer of each level as one autograd
  // node that keeps only its inputs and recomputes the layer in backward: the same values, less
  // activation memory, about one more forward of time.
  void set_gradient_checkpointing(bool on);
  bool gradient_checkpointing() const;
  // How tree_logprobs batches each level's segments (model/tree_levels.h): LevelBatching::for_shape
  // of the model's shape unless set. Any batching gives the same values up to float rounding.
  void set_level_batching(const LevelBatching& batching);
  LevelBatching level_batching() const;

  // One decoder layer's weights (model.layers.N.* in Hugging Face names).
  struct Layer {
    torch::Tensor input_norm, q_w, q_b, k_w, k_b, v_w, v_b, o_w;
    torch::Tensor post_norm, gate_w, up_w, down_w;
  };

private:
  // Supplies a layer's attention keys/values for hidden_states: given the new tokens' k and v [B,
  // kv_heads, T, head_dim], returns everything the queries may see [B, kv_heads, L, head_dim] (the
  // slot cache's rows, or just k and v). The tree forward runs its layers itself.
  using KvSource = std::function<std::pair<torch::Tensor, torch::Tensor>(
      size_t layer, const torch::Tensor& k, const torch::Tensor& v)>;
  // Runs a layer's attention itself: queries [B, heads, T, head_dim] and fresh keys/values [B,
  // kv_heads, T, head_dim] -> the output [B, heads, T, head_dim].
  using LayerAttention = std::function<torch::Tensor(
      size_t layer, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v)>;

  struct WeightRef {
    std::string name; // Hugging Face tensor name
    torch::Tensor* tensor;
    std::vector<int64_t> shape; // as the config implies
  };

  Qwen2() = default;
  explicit Qwen2(const Qwen2Config& cfg); // layers sized, tensors undefined
  // Every stored weight in HF order; lm_head only when untied.
  std::vector<WeightRef> weight_refs();
  // The layer stack over token ids [B, T] at `positions` [B, T]; `mask` [B, 1, T, L] is true where
  // a query may attend to key l. Returns the last layer's output [B, T, hidden] (before the final
  // norm).
  torch::Tensor hidden_states(const torch::Tensor& ids, const torch::Tensor& positions,
                              const torch::Tensor& mask, const KvSource& kv) const;
  torch::Tensor hidden_states(const torch::Tensor& ids, const torch::Tensor& positions,
                              const LayerAttention& attend) const;
  // Shared by prefill and decode: appends each token list to its slot, returns last-token logits.
  torch::Tensor extend(KvCache& cache, const std::vector<int64_t>& slots,
                       const std::vector<std::vector<int32_t>>& tokens);
  torch::Tensor extend(PagedKvCache& cache, const std::vector<int64_t>& seqs,
                       const std::vector<std::vector<int32_t>>& tokens, DecodeAttention attention);
  // A right-padded batch on the device: ids and positions [B * max_new], the row of each
  // sequence's last token [B]. Returns those rows' float32 logits [B, vocab].
  struct ExtendInputs {
    int64_t batch, max_new, max_total;
    torch::Tensor ids, positions, last_rows;
  };
  torch::Tensor run_extend(const ExtendInputs& in, const KvSource& kv) const;

  Qwen2Config config_;
  torch::Tensor embed_, final_norm_, lm_head_; // lm_head_ aliases embed_ when tied
  std::vector<Layer> layers_;
  std::string source_dir_; // where load() read from: save() copies its tokenizer files
  bool gradient_checkpointing_ = false;
  std::optional<LevelBatching> level_batching_;
};

} // namespace treerpo::model
