#pragma once
// Branching policies, one per tree shape (rollout.algorithm): at each token about to be emitted,
// does the branch continue or end its node and split? Plain logic over what the engine observed, so
// every rule is testable without a model.
#include <cstdint>
#include <memory>

#include "treerpo/config/config.h"
#include "treerpo/rollout/tree.h"

namespace treerpo::rollout {

// What the engine knows about a branch when the token t about to be emitted has been drawn.
struct BranchView {
  int32_t depth = 0;            // depth of the branch's current node
  int64_t node_tokens = 0;      // tokens the current node already holds
  bool after_delimiter = false; // the previous token's text ends in a delimiter
  float entropy = 0.0f;         // top-k entropy of the distribution of t
  bool coverage = false;        // the node descends from a coverage sibling: it never splits
  int64_t tree_paths = 0;       // live paths of the tree (treepo's width)
};

// children == 0: continue (emit t into the current node). Otherwise the node ends before t and gets
// `children` children; the first starts with t, the second with a different token when `distinct`,
// the others with independent draws from the same distribution.
struct Decision {
  int32_t children = 0;
  NodeOrigin origin = NodeOrigin::Sample;
  bool distinct = false;
};

class Policy {
public:
  virtual ~Policy() = default;
  // The root (the prompt) always splits: its children are the first branches.
  virtual Decision at_root() const = 0;
  virtual Decision decide(const BranchView& view) const = 0;
};

// Throws bad_input on an unknown rollout.algorithm.
std::unique_ptr<Policy> make_policy(const RolloutConfig& config);

} // namespace treerpo::rollout
