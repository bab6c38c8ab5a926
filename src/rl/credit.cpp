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
    if (n.leaf && n.samples < 1)
      throw runtime_failure("leaf stands for " + std::to_string(n.samples) + " samples", where,
                            "a leaf ends at least one sample");
    if (n.leaf && !std::isfinite(n.reward))
      throw runtime_failure("leaf reward is not finite", where, "score every leaf before credit");
  }
}

// Samples under each node (a leaf counts its Node::samples) and the mean of their rewards, written
// into node.reward of interior nodes. Children follow parents, so one backward sweep suffices.
std::vector<int64_t> propagate_leaf_means(Tree& tree) {
  const size_t n = tree.nodes.size();
  std::vector<int64_t> leaves(n, 0);
  std::vector<double> sum(n, 0.0);
  for (size_t i = n; i-- > 0;) {
    Node& node = tree.nodes[i];
    if (node.leaf) {
      leaves[i] += node.samples;
      sum[i] += node.samples * node.reward;
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

// Sample standard deviation (n - 1, as torch.std in TRL and verl) of the samples' rewards.
double leaf_reward_std(const Tree& tree) {
  double sum = 0.0, sq = 0.0;
  int64_t count = 0;
  for (const Node& node : tree.nodes) {
    if (!node.leaf) continue;
    sum += node.samples * node.reward;
    sq += node.samples * node.reward * node.reward;
    count += node.samples;
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

// Sums per token of the samples' advantages, by sign; turned into SpanCredit at the end.
class CreditSums {
public:
  explicit CreditSums(const Tree& tree)
      : samples_(tree.nodes.size(), 0), tokens_(tree.nodes.size()) {
    for (const Node& node : tree.nodes) tokens_[node.id].resize(node.token_ids.size());
  }

  // `weight` samples pass through `node` (counted once per node, not per token).
  void pass(int32_t node, int32_t weight) { samples_[node] += weight; }

  // `scale` weighs the samples' terms (1, or 1 / sequence length for a per-sequence mean).
  void add(int32_t node, size_t token, double advantage, int32_t weight, double scale = 1.0) {
    TokenSums& t = tokens_[node][token];
    t.total += weight * advantage;
    t.weight += weight * scale;
    if (advantage > 0) {
      t.positive += weight * scale * advantage;
      t.positive_samples += weight;
    } else if (advantage < 0) {
      t.negative += weight * scale * advantage;
      t.negative_samples += weight;
    }
  }

  std::vector<SpanCredit> finish() const {
    std::vector<SpanCredit> out(tokens_.size());
    for (size_t n = 0; n < tokens_.size(); ++n) {
      SpanCredit& c = out[n];
      c.samples = samples_[n];
      for (const TokenSums& t : tokens_[n]) {
        c.mean.push_back(c.samples > 0 ? static_cast<float>(t.total / c.samples) : 0.0f);
        c.positive.push_back(static_cast<float>(t.positive));
        c.negative.push_back(static_cast<float>(t.negative));
        c.positive_samples.push_back(t.positive_samples);
        c.negative_samples.push_back(t.negative_samples);
        c.weight.push_back(static_cast<float>(t.weight));
      }
    }
    return out;
  }

private:
  struct TokenSums {
    double total = 0.0, positive = 0.0, negative = 0.0, weight = 0.0;
    int32_t positive_samples = 0, negative_samples = 0;
  };
  std::vector<int32_t> samples_;
  std::vector<std::vector<TokenSums>> tokens_;
};

// treerpo / fixed (DESIGN §4 rule 6): A(n) = r(n) - mean over n's sibling set of size >= 2; the
// node is its own unit, every token of its span carries A(n).
std::vector<SpanCredit> sibling_credit(Tree& tree) {
  CreditSums sums(tree);
  for (Node& node : tree.nodes) {
    node.advantage = 0.0;
    if (node.parent < 0) continue;
    sums.pass(node.id, 1);
    if (is_branch(tree, node.parent)) {
      const Node& parent = tree.nodes[node.parent];
      double sum = 0.0;
      for (int32_t sibling : parent.children) sum += tree.nodes[sibling].reward;
      node.advantage = node.reward - sum / static_cast<double>(parent.children.size());
    }
    for (size_t t = 0; t < node.token_ids.size(); ++t) sums.add(node.id, t, node.advantage, 1);
  }
  return sums.finish();
}

// Generated tokens on the path root -> `leaf`: the length of the sequence it ends.
int64_t path_tokens(const Tree& tree, int32_t leaf) {
  int64_t n = 0;
  for (int32_t a = leaf; a > 0; a = tree.nodes[a].parent)
    n += static_cast<int64_t>(tree.nodes[a].token_ids.size());
  return n;
}

// grpo / tempo / treepo: every sample (leaf, Node::samples times) adds its advantage at each token
// of its path; `advantage(leaf, node, token)` is the rule's per-sample value, mapped by the
// options' (A - shift) * scale (as is every node.advantage). With per_sequence_mean each sample's
// terms weigh 1 / its length.
template <typename PerSample>
std::vector<SpanCredit> path_credit(Tree& tree, const CreditOptions& options, PerSample advantage) {
  for (Node& node : tree.nodes)
    if (node.parent >= 0) node.advantage = (node.advantage - options.shift) * options.scale;
  CreditSums sums(tree);
  for (const Node& leaf : tree.nodes) {
    if (!leaf.leaf) continue;
    const int64_t length = path_tokens(tree, leaf.id);
    const double weight =
        options.per_sequence_mean && length > 0 ? 1.0 / static_cast<double>(length) : 1.0;
    for (int32_t a = leaf.id; a > 0; a = tree.nodes[a].parent) {
      sums.pass(a, leaf.samples);
      for (size_t t = 0; t < tree.nodes[a].token_ids.size(); ++t) {
        const double mapped = (advantage(leaf, a, t) - options.shift) * options.scale;
        sums.add(a, t, mapped, leaf.samples, weight);
      }
    }
  }
  return sums.finish();
}

// grpo / tempo: A_i = R_i - mu (/ std). TEMPO adds V(s_{t+1}) - V(s_t) at branching tokens, the
// first token of a child of a node with >= 2 children, where V(s_t) = V(parent) and V(s_{t+1}) =
// V(child), the same for every sample through it. Elsewhere in a trie the samples through s_t and
// s_{t+1} are the same, so the TD term is 0 there. node.advantage = V(n) - mu (/ std), the mean of
// R_i - mu over the samples through n.
std::vector<SpanCredit> sample_credit(Tree& tree, bool temporal_difference, bool std_normalize,
                                      const CreditOptions& options) {
  const double mu = tree.nodes.front().reward;
  const double scale = std_normalize ? 1.0 / (leaf_reward_std(tree) + kStdFloor) : 1.0;
  for (Node& node : tree.nodes) node.advantage = node.parent < 0 ? 0.0 : (node.reward - mu) * scale;
  return path_credit(tree, options, [&](const Node& leaf, int32_t node, size_t token) {
    double td = 0.0;
    const Node& n = tree.nodes[node];
    if (temporal_difference && token == 0 && is_branch(tree, n.parent))
      td = n.reward - tree.nodes[n.parent].reward;
    return (leaf.reward - mu + td) * scale;
  });
}

// TreePO: per leaf i, A_i = mean over the depths j of its path of (R_i - mean of the samples under
// its depth-j ancestor), the root always counted and deeper ancestors when they hold >= 2 samples.
// node.advantage = mean of A_i over the samples through the node.
std::vector<SpanCredit> trajectory_credit(Tree& tree, const std::vector<int64_t>& samples_under,
                                          const CreditOptions& options) {
  std::vector<double> per_leaf(tree.nodes.size(), 0.0), sum(tree.nodes.size(), 0.0);
  for (const Node& leaf : tree.nodes) {
    if (!leaf.leaf) continue;
    double total = 0.0;
    int64_t depths = 0;
    for (int32_t a = leaf.id; a >= 0; a = tree.nodes[a].parent) {
      if (a != 0 && samples_under[a] < 2) continue;
      total += leaf.reward - tree.nodes[a].reward;
      ++depths;
    }
    per_leaf[leaf.id] = total / static_cast<double>(depths);
    for (int32_t a = leaf.id; a >= 0; a = tree.nodes[a].parent)
      sum[a] += leaf.samples * per_leaf[leaf.id];
  }
  for (Node& node : tree.nodes) {
    node.advantage = node.parent < 0 || samples_under[node.id] == 0
                         ? 0.0
                         : sum[node.id] / static_cast<double>(samples_under[node.id]);
  }
  return path_credit(tree, options,
                     [&](const Node& leaf, int32_t, size_t) { return per_leaf[leaf.id]; });
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

std::vector<SpanCredit> assign_credit(rollout::Tree& tree, const CreditOptions& options) {
  check_shape(tree);
  const std::vector<int64_t> samples_under = propagate_leaf_means(tree);
  const bool mapped = options.shift != 0.0 || options.scale != 1.0;
  switch (options.rule) {
  case CreditRule::TreeRpo:
  case CreditRule::Fixed:
    if (options.per_sequence_mean || mapped)
      throw runtime_failure("a per-sequence mean or a whitening needs sample credit, not node "
                            "credit",
                            "assign_credit", "use it with grpo, tempo or treepo");
    return sibling_credit(tree);
  case CreditRule::Grpo:
    return sample_credit(tree, false, options.std_normalize, options);
  // Dr-GRPO drops the std by definition.
  case CreditRule::DrGrpo:
    return sample_credit(tree, false, false, options);
  case CreditRule::Tempo:
    return sample_credit(tree, true, options.std_normalize, options);
  case CreditRule::TreePo:
    return trajectory_credit(tree, samples_under, options);
  }
  throw runtime_failure("unhandled credit rule", "assign_credit");
}

Whitening whitening(const std::vector<rollout::Tree>& trees) {
  // Every (generated token, sample) pair of a sample carries its leaf's advantage.
  double pairs = 0.0, sum = 0.0;
  for (const Tree& tree : trees)
    for (const Node& leaf : tree.nodes)
      if (leaf.leaf) {
        const double n = static_cast<double>(leaf.samples * path_tokens(tree, leaf.id));
        pairs += n;
        sum += n * leaf.advantage;
      }
  Whitening w;
  if (pairs < 2.0) return w;
  w.shift = sum / pairs;
  double squares = 0.0;
  for (const Tree& tree : trees)
    for (const Node& leaf : tree.nodes)
      if (leaf.leaf) {
        const double n = static_cast<double>(leaf.samples * path_tokens(tree, leaf.id));
        squares += n * (leaf.advantage - w.shift) * (leaf.advantage - w.shift);
      }
  // verl's masked_var(unbiased=True), then rsqrt(var + 1e-8).
  w.scale = 1.0 / std::sqrt(squares / (pairs - 1.0) + 1e-8);
  return w;
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
