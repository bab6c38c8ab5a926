#pragma once
// Packing one scored tree for the training forward: every unique tree token once (prompt first),
// with what the loss needs per token. The model computes log p(tokens[i] | ancestors) for the whole
// pack in one forward (model::PackedTree); the loss reads the parallel vectors below.
#include <cstdint>
#include <vector>

#include "treerpo/model/packed_tree.h"
#include "treerpo/rl/credit.h"
#include "treerpo/rollout/tree.h"

namespace treerpo::rl {

struct PackedBatch {
  model::PackedTree tree; // tokens + parent (index of the previous token on the path, -1 first)
  // Parallel to tree.tokens:
  std::vector<int32_t> node;       // owning node id (prompt tokens: 0, the root)
  std::vector<float> old_logprobs; // sampling-time log-prob (prompt tokens: 0)
  // The token's credit (rl::SpanCredit; all 0 outside the loss): the samples through it, which
  // weigh it in token means, and the sums and counts of their positive and negative advantages.
  std::vector<float> samples;
  std::vector<float> advantage_positive, advantage_negative;
  std::vector<float> positive_samples, negative_samples;
  // The samples' weights summed (SpanCredit::weight): the KL term's weight per token.
  std::vector<float> weight;
  // Loss group, numbered densely 0..groups-1 in order of first appearance (loss_groups decides
  // membership); -1 = not in the loss (prompt tokens, single children of treerpo trees).
  std::vector<int32_t> group;
  int32_t prompt_tokens = 0;
  int32_t groups = 0;    // number of distinct group ids >= 0
  int32_t sequences = 0; // samples of the tree (leaves, each Node::samples times)

  int64_t size() const { return static_cast<int64_t>(tree.tokens.size()); }
  // Tokens with group >= 0, each counted once per sample through it (a token shared by k samples
  // is k of the samples' tokens).
  int64_t loss_tokens() const;
};

// Packs `tree` in node order (each node's span after its parent's). `credit` is assign_credit's
// result for this tree; `rule` decides the loss groups. Throws runtime_failure if a span and its
// logprobs or its credit differ in length, or the tree has no prompt.
PackedBatch pack_tree(const rollout::Tree& tree, const std::vector<SpanCredit>& credit,
                      CreditRule rule);

// Tokens each training forward processes on one tree (DESIGN §5, "packed training forward"):
//   packed:    every unique token once = prompt + every node span (Tree::unique_tokens()).
//   per_group: the public reference forwards, for each sibling group (a parent with >= 2 children),
//   every
//              child as its own sequence: the child's full context (prompt + ancestor spans) + its
//              own span. Single children (no group) are not forwarded at all.
struct ForwardCost {
  int64_t packed = 0;
  int64_t per_group = 0;
};
ForwardCost forward_cost(const rollout::Tree& tree);

} // namespace treerpo::rl
