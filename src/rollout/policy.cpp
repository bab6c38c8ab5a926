#include "treerpo/rollout/policy.h"

#include <algorithm>

#include "treerpo/util/error.h"

namespace treerpo::rollout {

namespace {

// DESIGN §4: forced distinct split at the root (or, rollout.first_split: sampled, two sampled
// children), then entropy-gated splits at delimiters.
class TreeRpoPolicy : public Policy {
public:
  explicit TreeRpoPolicy(const RolloutConfig& c) : c_(c) {}
  Decision at_root() const override {
    return c_.first_split == "sampled" ? Decision{2, NodeOrigin::Sample, false}
                                       : Decision{2, NodeOrigin::Forced, true};
  }
  Decision decide(const BranchView& v) const override {
    const bool split = !v.coverage && v.after_delimiter && v.node_tokens >= c_.min_segment_tokens &&
                       v.entropy > c_.entropy_threshold && v.depth < c_.max_depth;
    return split ? Decision{2, NodeOrigin::Entropy, true} : Decision{};
  }

private:
  RolloutConfig c_;
};

// grpo / tempo: n independent samples hanging off the root.
class SamplesPolicy : public Policy {
public:
  explicit SamplesPolicy(const RolloutConfig& c) : n_(static_cast<int32_t>(c.samples)) {}
  Decision at_root() const override { return {n_, NodeOrigin::Sample, false}; }
  Decision decide(const BranchView&) const override { return {}; }

private:
  int32_t n_;
};

// TreePO: every segment_tokens tokens a path forks into `branches` while the tree's live paths stay
// within max_width; a path that may not fork keeps growing its node.
class TreePoPolicy : public Policy {
public:
  explicit TreePoPolicy(const RolloutConfig& c) : c_(c) {}
  Decision at_root() const override {
    return {static_cast<int32_t>(std::min(c_.branches, c_.max_width)), NodeOrigin::Sample, false};
  }
  Decision decide(const BranchView& v) const override {
    const bool boundary = v.node_tokens > 0 && v.node_tokens % c_.segment_tokens == 0;
    const bool room = v.tree_paths + c_.branches - 1 <= c_.max_width;
    return boundary && room ? Decision{static_cast<int32_t>(c_.branches), NodeOrigin::Sample, false}
                            : Decision{};
  }

private:
  RolloutConfig c_;
};

// TreeRPO-fixed: N-ary, each node holds segment_tokens tokens, down to depth max_depth, whose nodes
// run to the end of the answer.
class FixedPolicy : public Policy {
public:
  explicit FixedPolicy(const RolloutConfig& c) : c_(c) {}
  Decision at_root() const override {
    return {static_cast<int32_t>(c_.branches), NodeOrigin::Sample, false};
  }
  Decision decide(const BranchView& v) const override {
    const bool split = v.node_tokens == c_.segment_tokens && v.depth < c_.max_depth;
    return split ? Decision{static_cast<int32_t>(c_.branches), NodeOrigin::Sample, false}
                 : Decision{};
  }

private:
  RolloutConfig c_;
};

} // namespace

std::unique_ptr<Policy> make_policy(const RolloutConfig& config) {
  const std::string& a = config.algorithm;
  if (a == "treerpo") return std::make_unique<TreeRpoPolicy>(config);
  if (a == "grpo" || a == "tempo") return std::make_unique<SamplesPolicy>(config);
  if (a == "treepo") return std::make_unique<TreePoPolicy>(config);
  if (a == "fixed") return std::make_unique<FixedPolicy>(config);
  throw bad_input("unknown rollout.algorithm '" + a + "'", "rollout.algorithm",
                  "use treerpo, grpo, tempo, treepo or fixed");
}

} // namespace treerpo::rollout
