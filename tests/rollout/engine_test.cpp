// TreeRPO rules on the batched engine with scripted next-token distributions (DESIGN §4).
#include <gtest/gtest.h>

#include "scripted_model.h"
#include "treerpo/rollout/coverage.h"
#include "treerpo/util/error.h"

namespace treerpo::rollout {
namespace {

using namespace testing;

const std::vector<int32_t> kPrompt = {kY, kY};

// The answer cycles "a b ." and ends at 14 tokens; the draw is always the scripted token (top_p
// 0.5), and the entropy is high only for answer positions = 3 (mod 6).
std::vector<float> cycle_script(const std::vector<int32_t>& ctx) {
  const size_t g = ctx.size() - kPrompt.size();
  if (g >= 14) return peaked(kEos, 20.0f);
  const int32_t next = g % 3 == 0 ? kA : g % 3 == 1 ? kB : kDot;
  return peaked(next, g % 6 == 3 ? 2.0f : 20.0f);
}

RolloutSetup setup(int64_t min_segment = 3) {
  RolloutSetup s;
  s.config.min_segment_tokens = min_segment;
  s.config.top_p = 0.5;
  s.config.coverage = "off";
  s.config.delimiters = {"."};
  s.eos_ids = {kEos};
  s.seed = 11;
  return s;
}

std::vector<Tree> grow(const RolloutSetup& s, int64_t slots = 64, int prompts = 3,
                       RolloutStats* stats = nullptr, ScriptedModel::Script script = cycle_script) {
  ScriptedModel model(slots, std::move(script));
  std::vector<PromptInput> in(prompts, PromptInput{"q", "1", kPrompt});
  return grow_trees(model, piece_streams(), s, in, {}, stats);
}

// Answer position of token i of `node` (tokens before it on the path).
size_t position(const Tree& t, int32_t node, size_t i) {
  return t.answer_ids(node).size() - t.nodes[node].token_ids.size() + i;
}

int32_t token_before(const Tree& t, int32_t node, size_t i) {
  if (i > 0) return t.nodes[node].token_ids[i - 1];
  const auto path = t.answer_ids(t.nodes[node].parent);
  return path.empty() ? kPrompt.back() : path.back();
}

TEST(TreeRpoEngine, RootGetsTwoForcedChildrenWithDifferentFirstTokens) {
  for (const Tree& t : grow(setup(), 64, 8)) {
    ASSERT_EQ(t.root().children.size(), 2u);
    const Node& a = t.nodes[t.root().children[0]];
    const Node& b = t.nodes[t.root().children[1]];
    EXPECT_EQ(a.origin, NodeOrigin::Forced);
    EXPECT_EQ(b.origin, NodeOrigin::Forced);
    EXPECT_NE(a.token_ids.front(), b.token_ids.front());
    EXPECT_TRUE(t.root().split_entropy.has_value());
  }
}

// rollout.first_split: sampled. The first token is scripted with certainty (top_p 0.5 keeps only
// it), so both children start with it: nothing forces a token the model would not sample.
TEST(TreeRpoEngine, SampledFirstSplitGivesTwoSampledChildren) {
  RolloutSetup s = setup();
  s.config.first_split = "sampled";
  for (const Tree& t : grow(s, 64, 8)) {
    ASSERT_EQ(t.root().children.size(), 2u);
    const Node& a = t.nodes[t.root().children[0]];
    const Node& b = t.nodes[t.root().children[1]];
    EXPECT_EQ(a.origin, NodeOrigin::Sample);
    EXPECT_EQ(b.origin, NodeOrigin::Sample);
    EXPECT_EQ(a.token_ids.front(), kA);
    EXPECT_EQ(b.token_ids.front(), kA);
  }
}

TEST(TreeRpoEngine, SplitsExactlyWhereAllGatesHold) {
  RolloutSetup s = setup(3);
  s.config.max_depth = 3;
  int entropy_splits = 0;
  for (const Tree& t : grow(s, 64, 4)) {
    for (const Node& n : t.nodes) {
      if (n.id == 0) continue;
      auto gates = [&](size_t i) {
        return i >= 3 && token_before(t, n.id, i) == kDot && position(t, n.id, i) % 6 == 3 &&
               n.depth < 3;
      };
      for (size_t i = 0; i < n.token_ids.size(); ++i) EXPECT_FALSE(gates(i)) << "node " << n.id;
      if (!n.children.empty()) {
        ++entropy_splits;
        EXPECT_TRUE(gates(n.token_ids.size())) << "node " << n.id;
        ASSERT_EQ(n.children.size(), 2u);
        EXPECT_EQ(t.nodes[n.children[0]].origin, NodeOrigin::Entropy);
        EXPECT_NE(t.nodes[n.children[0]].token_ids.front(),
                  t.nodes[n.children[1]].token_ids.front());
        EXPECT_GT(*n.split_entropy, 1.0f);
      }
    }
    EXPECT_LE(t.max_depth(), 3);
  }
  EXPECT_GT(entropy_splits, 0);
}

TEST(TreeRpoEngine, DepthLimitStopsSplitting) {
  RolloutSetup s = setup(3);
  s.config.max_depth = 1;
  for (const Tree& t : grow(s)) {
    EXPECT_EQ(t.max_depth(), 1);
    EXPECT_EQ(t.nodes.size(), 3u);
  }
}

TEST(TreeRpoEngine, NodeAndAnswerCapsEndLeaves) {
  RolloutSetup s = setup(100); // no entropy splits
  s.config.max_node_tokens = 4;
  for (const Tree& t : grow(s)) {
    for (int32_t leaf : t.leaf_ids()) {
      const auto& ids = t.nodes[leaf].token_ids;
      EXPECT_TRUE(ids.size() == 4u || (ids.size() < 4u && ids.back() == kEos));
    }
  }
  s.config.max_node_tokens = 1300;
  s.config.max_answer_tokens = 5;
  s.config.min_segment_tokens = 2;
  for (const Tree& t : grow(s)) {
    for (int32_t leaf : t.leaf_ids()) {
      const auto& ids = t.nodes[leaf].token_ids;
      EXPECT_TRUE(t.answer_ids(leaf).size() == 5u || ids.back() == kEos);
    }
  }
}

TEST(TreeRpoEngine, LeavesEndAtEos) {
  for (const Tree& t : grow(setup(100))) {
    for (int32_t leaf : t.leaf_ids()) {
      EXPECT_EQ(t.nodes[leaf].token_ids.back(), kEos);
      EXPECT_TRUE(t.nodes[leaf].children.empty());
    }
  }
}

TEST(TreeRpoEngine, SameSeedSameTreesWhateverTheSlotCount) {
  RolloutSetup s = setup(3);
  s.config.coverage = "seed";
  s.config.coverage_min_tokens = 5;
  auto a = grow(s, 64, 4), b = grow(s, 16, 4);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].nodes.size(), b[i].nodes.size());
    for (size_t n = 0; n < a[i].nodes.size(); ++n) {
      EXPECT_EQ(a[i].nodes[n].token_ids, b[i].nodes[n].token_ids);
      EXPECT_EQ(a[i].nodes[n].parent, b[i].nodes[n].parent);
    }
  }
  s.seed = 12;
  auto c = grow(s, 64, 4);
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    differs |= a[i].nodes.size() != c[i].nodes.size() ||
               a[i].nodes[2].token_ids != c[i].nodes[2].token_ids;
  }
  EXPECT_TRUE(differs);
}

TEST(TreeRpoEngine, EveryTokenWithASuccessorIsForwardedOnce) {
  RolloutSetup s = setup(3);
  s.config.coverage = "seed";
  s.config.coverage_min_tokens = 5;
  RolloutStats stats;
  auto trees = grow(s, 16, 4, &stats);
  int64_t unique = 0, leaves = 0;
  for (const Tree& t : trees) unique += t.unique_tokens(), leaves += t.leaf_ids().size();
  EXPECT_EQ(stats.unique_tree_tokens, unique);
  EXPECT_EQ(stats.leaves, leaves);
  // A leaf's last token is sampled but never fed: nothing follows it.
  EXPECT_EQ(stats.tokens_forwarded, unique - leaves);
}

TEST(TreeRpoEngine, SeedCoverageAddsOneSiblingPerLongLeaf) {
  RolloutSetup s = setup(3);
  s.config.coverage = "seed";
  s.config.coverage_min_tokens = 5;
  int coverage_nodes = 0;
  for (const Tree& t : grow(s, 64, 4)) {
    for (const Node& n : t.nodes) {
      if (n.origin == NodeOrigin::Coverage) {
        ++coverage_nodes;
        EXPECT_TRUE(n.leaf);
        continue;
      }
      if (n.id == 0) continue;
      int long_leaves = 0, covered = 0;
      for (int32_t c : n.children) {
        const Node& k = t.nodes[c];
        if (k.origin == NodeOrigin::Coverage)
          ++covered;
        else if (k.leaf && k.token_ids.size() >= 5)
          ++long_leaves;
      }
      EXPECT_EQ(covered, long_leaves) << "node " << n.id;
      EXPECT_LE(n.children.size(), 4u);
    }
  }
  EXPECT_GT(coverage_nodes, 0);
}

TEST(TreeRpoEngine, ReferenceCoverageCutsLongLeavesAtADelimiter) {
  RolloutSetup s = setup(4);
  s.config.entropy_threshold = 100.0; // no entropy splits: every interior node below the root is
                                      // a coverage cut
  s.config.coverage = "reference";
  s.config.coverage_min_chars = 5;
  int cuts = 0;
  for (const Tree& t : grow(s)) {
    for (const Node& n : t.nodes) {
      if (n.children.empty() || n.id == 0) continue;
      ++cuts;
      ASSERT_EQ(n.children.size(), 2u);
      EXPECT_EQ(n.token_ids.back(), kDot);
      EXPECT_GE(n.token_ids.size(), 4u) << "the cut lies at least L_min tokens into the leaf";
      for (int32_t c : n.children) EXPECT_EQ(t.nodes[c].origin, NodeOrigin::Coverage);
    }
  }
  EXPECT_GT(cuts, 0);
}

TEST(TreeRpoEngine, OffMeansNoCoverageNodes) {
  for (const Tree& t : grow(setup(3))) {
    for (const Node& n : t.nodes) EXPECT_NE(n.origin, NodeOrigin::Coverage);
  }
}

// Parked split points hold no decode row: two rows grow the trees 64 grow (they once stalled).
TEST(TreeRpoEngine, TwoLiveBranchesGrowTheTreesOfMany) {
  RolloutSetup s = setup(3);
  s.config.coverage = "seed";
  const auto few = grow(s, 2, 1), many = grow(s, 64, 1);
  ASSERT_EQ(few.size(), many.size());
  for (size_t t = 0; t < few.size(); ++t) {
    ASSERT_EQ(few[t].nodes.size(), many[t].nodes.size());
    for (size_t i = 0; i < few[t].nodes.size(); ++i) {
      EXPECT_EQ(few[t].nodes[i].token_ids, many[t].nodes[i].token_ids);
      EXPECT_EQ(few[t].nodes[i].parent, many[t].nodes[i].parent);
    }
  }
}

} // namespace
} // namespace treerpo::rollout
