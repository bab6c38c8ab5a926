#pragma once
// The production BranchModel: a Qwen2 decoder over a paged KV cache, and the tokenizer's streaming
// decoder as the branches' TextStream. The dense slot cache of earlier versions stays beside it
// as Qwen2DenseBranches, the baseline `bench rollout` compares with.
#include <map>
#include <memory>
#include <set>

#include "treerpo/config/config.h"
#include "treerpo/model/decode_graphs.h"
#include "treerpo/model/paged_kv_cache.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/rollout/engine.h"
#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::rollout {

// The KV pool a rollout gets, in tokens: rollout.kv_cache_tokens; or
// rollout.kv_cache_memory_fraction of `free_bytes` in whole blocks of `bytes_per_token`-byte
// tokens; or when both are 0 what a dense cache of max_live_branches slots x (longest prompt +
// max_answer_tokens + 1) tokens would hold. Throws runtime_failure when the fraction holds less
// than one answer and a block (what validation asks of kv_cache_tokens).
int64_t kv_pool_tokens(const RolloutConfig& config, int64_t longest_prompt,
                       int64_t bytes_per_token = 0, int64_t free_bytes = 0);
// Bytes a token's keys and values take in the pool (every layer).
int64_t kv_bytes_per_token(const model::Qwen2Config& shape, torch::Dtype dtype);
// kv_pool_tokens with the device's free memory now (util/device_memory.h, within model.memory_gb
// `cap_gib`), read only when the fraction is set.
int64_t kv_pool_tokens_on(const RolloutConfig& config, int64_t longest_prompt,
                          const model::Qwen2Config& shape, torch::Dtype dtype, torch::Device device,
                          double cap_gib);

// How decode steps run: as Qwen2::decode (each step its own shapes), or padded to fixed shapes
// (model/decode_graphs.h), eagerly or replayed as CUDA graphs (rollout.cuda_graphs). Fixed shapes
// need the paged kernel and the longest a sequence may grow.
enum class DecodeShapes { Dynamic, Fixed, CudaGraphs };

class Qwen2Branches : public BranchModel {
public:
  // A pool of ceil(kv_tokens / block_tokens) blocks (one more for fixed shapes' padding rows); at
  // most `max_live` branches per step; with fixed shapes no sequence longer than `max_length`.
  Qwen2Branches(model::Qwen2& model, int64_t max_live, int64_t kv_tokens, int64_t block_tokens,
                torch::Dtype dtype, torch::Device device,
                model::DecodeAttention attention = model::DecodeAttention::Torch,
                DecodeShapes shapes = DecodeShapes::Dynamic, int64_t max_length = 0);
  ~Qwen2Branches() override;
  int64_t max_live_branches() const override { return max_live_; }
  int64_t vocab_size() const override { return model_.config().vocab_size; }
  at::Device device() const override { return device_; }
  at::Tensor prefill(const std::vector<int64_t>& seqs,
                     const std::vector<std::vector<int32_t>>& prompts) override;
  at::Tensor decode(const std::vector<int64_t>& seqs, const std::vector<int32_t>& tokens) override;
  void fork(int64_t src, int64_t dst) override { cache_.fork(src, dst); }
  void release(int64_t seq) override { cache_.release(seq); }
  int64_t free_blocks() const override { return cache_.free_blocks(); }
  int64_t blocks_for(int64_t tokens) const override;
  int64_t blocks_to_decode(const std::vector<int64_t>& seqs) const override {
    return cache_.blocks_to_append(seqs, std::vector<int64_t>(seqs.size(), 1));
  }
  int64_t kv_tokens_held() const override { return cache_.held_blocks() * cache_.block_tokens(); }
  const model::PagedKvCache& cache() const { return cache_; }
  // CUDA graphs captured so far (DecodeShapes::CudaGraphs; 0 otherwise).
  int64_t graphs() const;

private:
  model::Qwen2& model_;
  int64_t max_live_;
  model::PagedKvCache cache_;
  torch::Device device_;
  model::DecodeAttention attention_;
  std::unique_ptr<model::DecodeGraphs> fixed_; // fixed-shape steps, when asked for
};

// rollout.cuda_graphs as DecodeShapes: CudaGraphs or Dynamic.
DecodeShapes decode_shapes_of(const RolloutConfig& config);

// The dense baseline: one slot of `max_tokens` per sequence, a fork copies the parent's rows.
// Throws runtime_failure when the rollout needs more than `slots` sequences at once.
class Qwen2DenseBranches : public BranchModel {
public:
  Qwen2DenseBranches(model::Qwen2& model, int64_t max_live, int64_t slots, int64_t max_tokens,
                     torch::Dtype dtype, torch::Device device);
  int64_t max_live_branches() const override { return max_live_; }
  int64_t vocab_size() const override { return model_.config().vocab_size; }
  at::Device device() const override { return device_; }
  at::Tensor prefill(const std::vector<int64_t>& seqs,
                     const std::vector<std::vector<int32_t>>& prompts) override;
  at::Tensor decode(const std::vector<int64_t>& seqs, const std::vector<int32_t>& tokens) override;
  void fork(int64_t src, int64_t dst) override;
  void release(int64_t seq) override;
  // What the slots hold (the allocation is slots x max_tokens from the start).
  int64_t kv_tokens_held() const override;
  int64_t kv_tokens_allocated() const { return cache_.slots() * cache_.max_tokens(); }

private:
  int64_t slot_of(int64_t seq); // the seq's slot, taken on first use
  model::Qwen2& model_;
  int64_t max_live_;
  model::KvCache cache_;
  torch::Device device_;
  std::map<int64_t, int64_t> slot_; // sequence -> slot
  std::set<int64_t> free_;
};

// Streams a branch's text with the tokenizer (special tokens kept, as the checker sees them).
TextStreamFactory tokenizer_streams(const tokenizer::Tokenizer& tok);

} // namespace treerpo::rollout
