#pragma once
// The batched rollout engine (DESIGN §5): grows the trees of many prompts at once. Every live
// branch of every tree is a sequence of the model's KV cache; each step decodes the branches the
// cache has room for in one batched forward, samples, and lets the shape's policy continue or
// split each branch. A split forks the parent's sequence (no prefix recomputed, its blocks
// shared); a finished branch releases its sequence. When the cache is full, trees wait, and the
// newest tree in flight is released and grown again later: never an error while one tree fits,
// never a different tree.
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "treerpo/config/config.h"
#include "treerpo/rollout/tree.h"

namespace treerpo::rollout {

// "Next-token logits for these branches": a model plus its KV cache, whose sequences are handles
// the engine chooses (any id >= 0). Production wraps Qwen2 over a paged cache; tests script the
// distributions.
class BranchModel {
public:
  virtual ~BranchModel() = default;
  // The most branches decoded in one step (rollout.max_live_branches).
  virtual int64_t max_live_branches() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual at::Device device() const = 0;
  // Appends each prompt to its (empty) sequence; float32 logits of each prompt's last token [B, V].
  virtual at::Tensor prefill(const std::vector<int64_t>& seqs,
                             const std::vector<std::vector<int32_t>>& prompts) = 0;
  // Appends one token per sequence; float32 logits [B, V].
  virtual at::Tensor decode(const std::vector<int64_t>& seqs,
                            const std::vector<int32_t>& tokens) = 0;
  virtual void fork(int64_t src, int64_t dst) = 0; // dst (empty) continues from src's tokens
  virtual void release(int64_t seq) = 0;

  // KV storage in blocks. A model whose storage never runs out keeps these defaults.
  virtual int64_t free_blocks() const { return std::numeric_limits<int64_t>::max(); }
  // Blocks a new sequence of n tokens takes.
  virtual int64_t blocks_for(int64_t) const { return 0; }
  // Blocks one decode step of these sequences takes, in this order (new ones, and the copies of
  // shared partial blocks).
  virtual int64_t blocks_to_decode(const std::vector<int64_t>&) const { return 0; }
  // Token positions of KV storage in use now (whole blocks).
  virtual int64_t kv_tokens_held() const { return 0; }
};

// Streaming detokenisation of one branch: push ids, get the newly completed text. Cloned at splits.
class TextStream {
public:
  virtual ~TextStream() = default;
  virtual std::string push(int32_t id) = 0;
  virtual std::unique_ptr<TextStream> clone() const = 0;
};
using TextStreamFactory = std::function<std::unique_ptr<TextStream>()>;

struct PromptInput {
  std::string prompt, gold;
  std::vector<int32_t> prompt_ids;
};

struct RolloutStats {
  int64_t step = 0;
  int64_t trees = 0; // started so far
  int64_t nodes = 0;
  int64_t leaves = 0;
  int32_t max_depth = 0;
  int64_t live_branches = 0;
  int64_t tokens_generated = 0;   // sampled into the trees
  int64_t tokens_forwarded = 0;   // fed through the model (prefill + decode)
  int64_t unique_tree_tokens = 0; // prompts once + every node span once
  // KV storage: the peak of positions held, and at that step the distinct tree tokens the held
  // sequences cover (each shared prefix once).
  int64_t kv_tokens_held_peak = 0;
  int64_t kv_unique_tokens_at_peak = 0;
  int64_t branch_waits = 0;   // branch-steps a live branch skipped for lack of KV blocks
  int64_t preemptions = 0;    // trees released to make room (grown again from their prompts)
  int64_t host_transfers = 0; // device-to-host copies the rollout made (util/host_transfer.h)
  double seconds = 0.0;
  double tokens_per_s() const { return seconds > 0 ? tokens_generated / seconds : 0.0; }
};

struct RolloutSetup {
  RolloutConfig config;
  std::vector<int32_t> eos_ids;
  uint64_t seed = 0;
  // Index of prompts[0] in the whole batch: each tree's draws derive from (seed, its index), so a
  // rank growing prompts [k, k + n) of a batch grows the trees one process would.
  int64_t first_tree = 0;
};

// Grows one tree per prompt under config.algorithm. `on_step` (optional) sees the counters after
// every step. Same seed, config and device: the same trees, whatever the cache's size. Throws
// runtime_failure only when the cache cannot hold one tree's live branches (raise
// rollout.kv_cache_tokens).
std::vector<Tree> grow_trees(BranchModel& model, const TextStreamFactory& text,
                             const RolloutSetup& setup, const std::vector<PromptInput>& prompts,
                             const std::function<void(const RolloutStats&)>& on_step = {},
                             RolloutStats* final_stats = nullptr);

} // namespace treerpo::rollout
