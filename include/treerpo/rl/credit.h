#pragma once
// Credit assignment: from leaf rewards (1/0, set by the checker) to per-token advantages on a Tree
// (DESIGN §4 rules 5-6). One rule per algorithm; every rule writes node.reward of interior nodes
// and node.advantage of every node, and returns the per-token advantages.
#include <cstdint>
#include <string>
#include <vector>

#include "treerpo/rollout/tree.h"

namespace treerpo::rl {

enum class CreditRule { TreeRpo, Grpo, DrGrpo, Tempo, TreePo, Fixed };

// rollout.algorithm (+ train.loss_agg: "grpo" with "dr-grpo" is DrGrpo) -> rule. Throws bad_input
// on an unknown algorithm.
CreditRule credit_rule_for(const std::string& algorithm, const std::string& loss_agg);
const char* credit_rule_name(CreditRule rule);

struct CreditOptions {
  CreditRule rule = CreditRule::TreeRpo;
  // grpo / tempo: divide by the group's sample std (unbiased, n-1, as torch.std in TRL and verl; a
  // group with std 0 is divided by 1e-4 added to it, like TRL's (std + 1e-4)). Ignored by the other
  // rules.
  bool std_normalize = false;
  // grpo / tempo / treepo with train.loss_agg seq-mean-token-mean: each sample's terms weigh 1 /
  // (its generated tokens), so that summing them gives each sequence's token mean. treerpo /
  // fixed credit nodes, not samples, and reject it.
  bool per_sequence_mean = false;
  // grpo / treepo: every per-sample advantage becomes (A - shift) * scale, the batch whitening of
  // train.whiten_advantages (see whitening()). Identity by default.
  double shift = 0.0;
  double scale = 1.0;
};

// One node's credit. Every token of the span lies on the same `samples` samples (trajectories:
// leaves, weighted by Node::samples); their advantages at a token may differ (GRPO and TEMPO on a
// shared prefix, TreePO), and PPO-clip clips positive and negative advantages on opposite sides, so
// the loss reads each sign's sum and count, not only the mean. For treerpo / fixed the node itself
// is the unit: samples = 1.
struct SpanCredit {
  int32_t samples = 0;
  std::vector<float> mean;               // per token: mean advantage over the samples
  std::vector<float> positive, negative; // per token: sum of the positive / negative advantages
  std::vector<int32_t> positive_samples; // per token: samples with a positive advantage
  std::vector<int32_t> negative_samples; // per token: samples with a negative advantage
  // per token: the samples' weights summed (= samples, or sum of 1 / length with
  // per_sequence_mean); positive and negative above are weighted the same way.
  std::vector<float> weight;
};

// Leaves already carry reward (1/0). Fills every interior node's reward (mean of descendant
// leaves, each counted Node::samples times) and every node's advantage; returns each node's span
// credit, parallel to tree.nodes (tokens parallel to node.token_ids).
//   treerpo / fixed: A(n) = r(n) - mean over n's sibling set (sets of size >= 2, else 0), every
//     token of n.
//   grpo / dr-grpo: per sample A = R - mu (/ std), mu and std over the prompt's samples; on every
//     token of the sample.
//   tempo: per sample A_t = R - mu + (V(s_{t+1}) - V(s_t)) (/ std), the TD term at branching
//     tokens (the first token of a child of a node with >= 2 children) and 0 elsewhere; V(s) = mean
//     reward of the samples through s.
//   treepo: per trajectory A_i = mean over depths j of (R_i - mean of the depth-j subgroup holding
//     i), the root always and deeper ancestors holding >= 2 leaves.
// node.advantage holds the mean over the samples through the node, without TEMPO's TD term.
// Throws runtime_failure for per_sequence_mean with a node-credit rule (treerpo, fixed).
// Throws runtime_failure on a malformed tree (no root, a parent that does not precede its child, a
// leaf with children or with samples < 1, a non-finite leaf reward).
std::vector<SpanCredit> assign_credit(rollout::Tree& tree, const CreditOptions& options);

// verl's masked_whiten of per-sample advantages over a batch: the mean of A over every (generated
// token, sample) pair of `trees` and 1 / sqrt(their unbiased variance + 1e-8). The trees must hold
// the credit of a rule whose per-sample advantage is constant along the sample (grpo, dr-grpo,
// treepo: it is then each leaf's node.advantage), assigned with the identity map.
struct Whitening {
  double shift = 0.0;
  double scale = 1.0;
};
Whitening whitening(const std::vector<rollout::Tree>& trees);

// All leaves agree (all correct or all wrong, or fewer than two leaves): every rule gives zero
// advantage.
bool zero_signal(const rollout::Tree& tree);

// Sibling groups used by the loss (group-token-mean): for each node, the id of the group its tokens
// are averaged in, or -1 if its tokens carry no loss.
//   treerpo / fixed: the node's own sibling set, id = parent node id, when the set has >= 2
//   members. grpo / dr-grpo / tempo / treepo: the samples of the prompt are one group (id 0)
//   holding every generated node (the root's child set, with the chains below it).
std::vector<int32_t> loss_groups(const rollout::Tree& tree, CreditRule rule);

} // namespace treerpo::rl
