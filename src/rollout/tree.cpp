#include "treerpo/rollout/tree.h"

#include <algorithm>

namespace treerpo::rollout {

const char* origin_name(NodeOrigin origin) {
  switch (origin) {
  case NodeOrigin::Root:
    return "root";
  case NodeOrigin::Forced:
    return "forced";
  case NodeOrigin::Entropy:
    return "entropy";
  case NodeOrigin::Coverage:
    return "coverage";
  case NodeOrigin::Sample:
    return "sample";
  }
  return "unknown";
}

std::vector<int32_t> Tree::leaf_ids() const {
  std::vector<int32_t> ids;
  for (const Node& n : nodes) {
    if (n.leaf) ids.push_back(n.id);
  }
  return ids;
}

std::vector<int32_t> Tree::answer_ids(int32_t node) const {
  std::vector<int32_t> chain;
  for (int32_t n = node; n >= 0; n = nodes[n].parent) chain.push_back(n);
  std::vector<int32_t> ids;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const auto& span = nodes[*it].token_ids;
    ids.insert(ids.end(), span.begin(), span.end());
  }
  return ids;
}

std::vector<int32_t> Tree::context_ids(int32_t node) const {
  std::vector<int32_t> ids = prompt_ids;
  int32_t parent = nodes[node].parent;
  if (parent >= 0) {
    std::vector<int32_t> above = answer_ids(parent);
    ids.insert(ids.end(), above.begin(), above.end());
  }
  return ids;
}

int64_t Tree::unique_tokens() const {
  auto total = static_cast<int64_t>(prompt_ids.size());
  for (const Node& n : nodes) total += static_cast<int64_t>(n.token_ids.size());
  return total;
}

int32_t Tree::max_depth() const {
  int32_t depth = 0;
  for (const Node& n : nodes) depth = std::max(depth, n.depth);
  return depth;
}

int32_t Tree::add_child(int32_t parent, NodeOrigin origin) {
  Node child;
  child.id = static_cast<int32_t>(nodes.size());
  child.parent = parent;
  child.depth = nodes[parent].depth + 1;
  child.origin = origin;
  nodes.push_back(std::move(child));
  nodes[parent].children.push_back(nodes.back().id);
  return nodes.back().id;
}

} // namespace treerpo::rollout
