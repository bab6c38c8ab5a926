#pragma once
// The batched rollout engine (DESIGN §5): grows the trees of many prompts at once. Every live
// branch of every tree sits in a KV-cache slot; each step decodes all of them in one batched
// forward, samples, and lets the shape's policy continue or split each branch. A split forks the
// parent's slot (no prefix recomputed); a finished branch frees its slot.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "treerpo/config/config.h"
#include "treerpo/rollout/tree.h"

namespace treerpo::rollout {

// "Next-token logits for these branches": a model plus its slot KV cache. Production wraps Qwen2;
// tests script the distributions.
class BranchModel {
public:
  virtual ~BranchModel() = default;
  virtual int64_t slots() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual at::Device device() const = 0;
  // Appends each prompt to its (empty) slot; float32 logits of each prompt's last token [B, V].
  virtual at::Tensor prefill(const std::vector<int64_t>& slots,
                             const std::vector<std::vector<int32_t>>& prompts) = 0;
  // Appends one token per slot; float32 logits [B, V].
  virtual at::Tensor decode(const std::vector<int64_t>& slots,
                            const std::vector<int32_t>& tokens) = 0;
  virtual void fork(int64_t src, int64_t dst) = 0; // dst becomes a copy of src
  virtual void release(int64_t slot) = 0;
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
// every step. Same seed, config and device: the same trees. Throws runtime_failure when the KV
// slots cannot hold the branches that must continue (raise rollout.max_live_branches).
std::vector<Tree> grow_trees(BranchModel& model, const TextStreamFactory& text,
                             const RolloutSetup& setup, const std::vector<PromptInput>& prompts,
                             const std::function<void(const RolloutStats&)>& on_step = {},
                             RolloutStats* final_stats = nullptr);

} // namespace treerpo::rollout
