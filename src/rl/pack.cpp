#include "treerpo/rl/pack.h"

#include <cmath>
#include <string>
#include <unordered_map>

#include "treerpo/util/error.h"

namespace treerpo::rl {

int64_t PackedBatch::loss_tokens() const {
  int64_t count = 0;
  for (size_t i = 0; i < group.size(); ++i) count += group[i] >= 0 ? std::lround(samples[i]) : 0;
  return count;
}

PackedBatch pack_tree(const rollout::Tree& tree, const std::vector<SpanCredit>& credit,
                      CreditRule rule) {
  if (tree.prompt_ids.empty())
    throw runtime_failure("tree has no prompt tokens", "pack_tree",
                          "tokenize the prompt before rollout");
  if (credit.size() != tree.nodes.size())
    throw runtime_failure("credit covers " + std::to_string(credit.size()) +
                              " nodes, the tree has " + std::to_string(tree.nodes.size()),
                          "pack_tree", "pass assign_credit's result for this tree");
  const std::vector<int32_t> node_group = loss_groups(tree, rule);
  PackedBatch packed;
  const auto total = static_cast<size_t>(tree.unique_tokens());
  packed.tree.tokens.reserve(total);
  packed.tree.parent.reserve(total);

  // Credit of token `t` of `span`, or nullptr for a token outside the loss.
  auto push = [&](int32_t token, int32_t parent, int32_t node, float old_logprob, int32_t group,
                  const SpanCredit* span, size_t t) {
    packed.tree.tokens.push_back(token);
    packed.tree.parent.push_back(parent);
    packed.node.push_back(node);
    packed.old_logprobs.push_back(old_logprob);
    packed.group.push_back(group);
    packed.samples.push_back(span ? static_cast<float>(span->samples) : 0.0f);
    packed.advantage_positive.push_back(span ? span->positive[t] : 0.0f);
    packed.advantage_negative.push_back(span ? span->negative[t] : 0.0f);
    packed.positive_samples.push_back(span ? static_cast<float>(span->positive_samples[t]) : 0.0f);
    packed.negative_samples.push_back(span ? static_cast<float>(span->negative_samples[t]) : 0.0f);
    packed.weight.push_back(span ? span->weight[t] : 0.0f);
  };
  for (size_t i = 0; i < tree.prompt_ids.size(); ++i)
    push(tree.prompt_ids[i], static_cast<int32_t>(i) - 1, 0, 0.0f, -1, nullptr, 0);
  packed.prompt_tokens = static_cast<int32_t>(tree.prompt_ids.size());

  // Index of each node's last token in the pack: its children's first token hangs there. Parents
  // precede children in Tree::nodes, so it is known when a child is reached.
  std::vector<int32_t> last(tree.nodes.size(), packed.prompt_tokens - 1);
  std::unordered_map<int32_t, int32_t> dense;
  for (const rollout::Node& node : tree.nodes) {
    const std::string where = "pack_tree: node " + std::to_string(node.id);
    if (node.logprobs.size() != node.token_ids.size())
      throw runtime_failure("span has " + std::to_string(node.token_ids.size()) + " tokens but " +
                                std::to_string(node.logprobs.size()) + " log-probs",
                            where, "record a sampling log-prob for every token");
    const SpanCredit& span = credit[node.id];
    const size_t len = node.token_ids.size();
    if (span.positive.size() != len || span.negative.size() != len ||
        span.positive_samples.size() != len || span.negative_samples.size() != len ||
        span.weight.size() != len)
      throw runtime_failure("credit does not match the span length", where,
                            "pass assign_credit's result for this tree");
    int32_t group = -1;
    if (node_group[node.id] >= 0 && !node.token_ids.empty()) {
      auto [it, fresh] = dense.emplace(node_group[node.id], static_cast<int32_t>(dense.size()));
      group = it->second;
    }
    int32_t previous = node.parent >= 0 ? last[node.parent] : packed.prompt_tokens - 1;
    for (size_t t = 0; t < node.token_ids.size(); ++t) {
      push(node.token_ids[t], previous, node.id, node.logprobs[t], group,
           group >= 0 ? &span : nullptr, t);
      previous = static_cast<int32_t>(packed.tree.tokens.size()) - 1;
    }
    last[node.id] = previous;
    if (node.leaf) packed.sequences += node.samples;
  }
  packed.groups = static_cast<int32_t>(dense.size());
  return packed;
}

ForwardCost forward_cost(const rollout::Tree& tree) {
  ForwardCost cost;
  cost.packed = tree.unique_tokens();
  // Context length of each node = prompt + its ancestors' spans; parents precede children.
  std::vector<int64_t> context(tree.nodes.size(), static_cast<int64_t>(tree.prompt_ids.size()));
  for (const rollout::Node& node : tree.nodes) {
    if (node.parent < 0) continue;
    const rollout::Node& parent = tree.nodes[node.parent];
    context[node.id] = context[parent.id] + static_cast<int64_t>(parent.token_ids.size());
    if (parent.children.size() >= 2)
      cost.per_group += context[node.id] + static_cast<int64_t>(node.token_ids.size());
  }
  return cost;
}

} // namespace treerpo::rl
