#include "treerpo/rl/credit.h"

#include <cmath>
#include <string>

#include "treerpo/util/error.h"

namespace treerpo::rl {
namespace {

using rollout::Node;
using rollout::Tree;

// A malformed tree is a rollout bug, not a user mistake: runtime failure.
void check_shape(const Tree& tree) {
  if (tree.nodes.empty())
    throw runtime_failure("tree has no nodes", "credit", "grow the tree from a root");
  for (const Node& n : tree.nodes) {
    const std::string where = "credit: node " + std::to_string(n.id);
    if (n.id < 0 || n.id >= static_cast<int32_t>(tree.nodes.size()) || &tree.nodes[n.id] != &n)
      throw runtime_failure("node id does not match its position", where, "keep nodes[i].id == i");
    if ((n.id == 0) != (n.parent < 0) || n.parent >= n.id)
      throw runtime_failure("parent does not precede its child", where,
                            "nodes[0] is the root and parents come before children");
    if (n.leaf && !n.children.empty())
      throw runtime_failure("leaf has children", where, "only childless nodes are leaves");
    if (n.leaf && !std::isfinite(n.reward))
      throw runtime_failure("leaf reward is not finite", where, "score every leaf before credit");
  }
}

// Leaves under each node (a node counts itself when it is a leaf) and the mean of their rewards,
// written into node.reward of interior nodes. Children follow parents, so one backward sweep
// suffices.
std::vector<int64_t> propagate_leaf_means(Tree& tree) {
  const size_t n = tree.nodes.size();
  std::vector<int64_t> leaves(n, 0);
  std::vector<double> sum(n, 0.0);
  for (size_t i = n; i-- > 0;) {
    Node& node = tree.nodes[i];
    if (node.leaf) {
      leaves[i] += 1;
      sum[i] += node.reward;
    } else {
      node.reward = leaves[i] > 0 ? sum[i] / static_cast<double>(leaves[i]) : 0.0;
    }
    if (node.parent >= 0) {
      leaves[node.parent] += leaves[i];
      sum[node.parent] += sum[i];
    }
  }
  return leaves;
}

// Sample standard deviation (n - 1, as torch.std in TRL and verl) of the leaf rewards.
double leaf_reward_std(const Tree& tree) {
  double sum = 0.0, sq = 0.0;
  int64_t count = 0;
  for (const Node& node : tree.nodes) {
    if (!node.leaf) continue;
    sum += node.reward;
    sq += node.reward * node.reward;
    ++count;
  }
  if (count < 2) return 0.0;
  const double mean = sum / static_cast<double>(count);
  const double var =
      (sq - static_cast<double>(count) * mean * mean) / static_cast<double>(count - 1);
  return std::sqrt(std::max(var, 0.0));
}

// TRL's guard against an all-equal group: divide by (std + 1e-4).
constexpr double kStdFloor = 1e-4;

bool is_branch(const Tree& tree, int32_t node) {
  return node >= 0 && tree.nodes[node].children.size() >= 2;
}

// treerpo / fixed (DESIGN §4 rule 6): A(n) = r(n) - mean over n's sibling set of size >= 2.
void sibling_advantages(Tree& tree) {
  for (Node& node : tree.nodes) {
    node.advantage = 0.0;
    if (!is_branch(tree, node.parent)) continue;
    const Node& parent = tree.nodes[node.parent];
    double sum = 0.0;
    for (int32_t sibling : parent.children) sum += tree.nodes[sibling].reward;
    node.advantage = node.reward - sum / static_cast<double>(parent.children.size());
  }
}

// grpo / tempo: a node's tokens lie on every sample (leaf) below it, and each stores the mean of
// those samples' advantages. For R_i - mu that mean is V(n) - mu, V(n) = node.reward (mean of its
// leaves). TEMPO adds V(s_{t+1}) - V(s_t) at branching tokens: the first token of a child of a node
// with >= 2 children, where V(s_t) = V(parent) and V(s_{t+1}) = V(child), the same for every sample
// through it. Elsewhere in a trie the samples through s_t and s_{t+1} are the same, so the TD term
// is 0 there.
std::vector<std::vector<float>> sample_advantages(Tree& tree, bool temporal_difference,
                                                  bool std_normalize) {
  const double mu = tree.nodes.front().reward;
  const double scale = std_normalize ? 1.0 / (leaf_reward_std(tree) + kStdFloor) : 1.0;
  std::vector<std::vector<float>> per_token(tree.nodes.size());
  for (Node& node : tree.nodes) {
    node.advantage = node.parent < 0 ? 0.0 : (node.reward - mu) * scale;
    per_token[node.id].assign(node.token_ids.size(), static_cast<float>(node.advantage));
    if (temporal_difference && is_branch(tree, node.parent) && !node.token_ids.empty()) {
      const double td = node.reward - tree.nodes[node.parent].reward;
      per_token[node.id][0] = static_cast<float>((node.reward - mu + td) * scale);
    }
  }
  return per_token;
}

// TreePO: per leaf i, A_i = mean over the depths j of its path of (R_i - mean of the leaves under
// its depth-j ancestor), the root always counted and deeper ancestors when they hold >= 2 leaves. A
// node's tokens store the mean of A_i over the leaves below it.
void trajectory_advantages(Tree& tree, const std::vector<int64_t>& leaves_under) {
  const size_t n = tree.nodes.size();
  std::vector<double> sum(n, 0.0);
  for (const Node& leaf : tree.nodes) {
    if (!leaf.leaf) continue;
    double total = 0.0;
    int64_t depths = 0;
    for (int32_t a = leaf.id; a >= 0; a = tree.nodes[a].parent) {
      if (a != 0 && leaves_under[a] < 2) continue;
      total += leaf.reward - tree.nodes[a].reward;
      ++depths;
    }
    const double advantage = total / static_cast<double>(depths);
    for (int32_t a = leaf.id; a >= 0; a = tree.nodes[a].parent) sum[a] += advantage;
  }
  for (Node& node : tree.nodes) {
    node.advantage = node.parent < 0 || leaves_under[node.id] == 0
                         ? 0.0
                         : sum[node.id] / static_cast<double>(leaves_under[node.id]);
  }
}

std::vector<std::vector<float>> span_advantages(const Tree& tree) {
  std::vector<std::vector<float>> per_token(tree.nodes.size());
  for (const Node& node : tree.nodes)
    per_token[node.id].assign(node.token_ids.size(), static_cast<float>(node.advantage));
  return per_token;
}

} // namespace

CreditRule credit_rule_for(const std::string& algorithm, const std::string& loss_agg) {
  if (algorithm == "treerpo") return CreditRule::TreeRpo;
  if (algorithm == "grpo") return loss_agg == "dr-grpo" ? CreditRule::DrGrpo : CreditRule::Grpo;
  if (algorithm == "tempo") return CreditRule::Tempo;
  if (algorithm == "treepo") return CreditRule::TreePo;
  if (algorithm == "fixed") return CreditRule::Fixed;
  throw bad_input("unknown algorithm '" + algorithm + "'", "rollout.algorithm",
                  "use treerpo, grpo, tempo, treepo or fixed");
}

const char* credit_rule_name(CreditRule rule) {
  switch (rule) {
  case CreditRule::TreeRpo:
    return "treerpo";
  case CreditRule::Grpo:
    return "grpo";
  case CreditRule::DrGrpo:
    return "dr-grpo";
  case CreditRule::Tempo:
    return "tempo";
  case CreditRule::TreePo:
    return "treepo";
  case CreditRule::Fixed:
    return "fixed";
  }
  return "unknown";
}

std::vector<std::vector<float>> assign_credit(rollout::Tree& tree, const CreditOptions& options) {
  check_shape(tree);
  const std::vector<int64_t> leaves_under = propagate_leaf_means(tree);
  switch (options.rule) {
  case CreditRule::TreeRpo:
  case CreditRule::Fixed:
    sibling_advantages(tree);
    return span_advantages(tree);
  case CreditRule::Grpo:
    return sample_advantages(tree, false, options.std_normalize);
  // Dr-GRPO drops the std by definition.
  case CreditRule::DrGrpo:
    return sample_advantages(tree, false, false);
  case CreditRule::Tempo:
    return sample_advantages(tree, true, options.std_normalize);
  case CreditRule::TreePo:
    trajectory_advantages(tree, leaves_under);
    return span_advantages(tree);
  }
  throw runtime_failure("unhandled credit rule", "assign_credit");
}

bool zero_signal(const rollout::Tree& tree) {
  bool seen = false;
  double first = 0.0;
  for (const Node& node : tree.nodes) {
    if (!node.leaf) continue;
    if (!seen) {
      seen = true;
      first = node.reward;
    } else if (node.reward != first) {
      return false;
    }
  }
  return true;
}

std::vector<int32_t> loss_groups(const rollout::Tree& tree, CreditRule rule) {
  std::vector<int32_t> group(tree.nodes.size(), -1);
  for (const Node& node : tree.nodes) {
    if (node.parent < 0) continue;
    if (rule == CreditRule::TreeRpo || rule == CreditRule::Fixed) {
      if (is_branch(tree, node.parent)) group[node.id] = node.parent;
    } else {
      group[node.id] = 0;
    }
  }
  return group;
}

} // namespace treerpo::rl
