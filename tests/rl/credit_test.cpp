// Credit rules on hand trees; every expected number is worked out from the rule in the comment.
#include <gtest/gtest.h>

#include <cmath>

#include "hand_trees.h"
#include "treerpo/rl/credit.h"
#include "treerpo/util/error.h"

namespace treerpo::rl {
namespace {

using testing::grpo_tree;
using testing::three_level_tree;
using testing::trie_tree;

constexpr double kTol = 1e-6;

void expect_node_advantages(const rollout::Tree& tree, const std::vector<double>& expected) {
  ASSERT_EQ(tree.nodes.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(tree.nodes[i].advantage, expected[i], kTol) << "node " << i;
}

// Per-token advantages equal the node's advantage on every token of its span.
void expect_spans_carry_node_advantage(const rollout::Tree& tree,
                                       const std::vector<std::vector<float>>& per_token) {
  ASSERT_EQ(per_token.size(), tree.nodes.size());
  for (const auto& node : tree.nodes) {
    ASSERT_EQ(per_token[node.id].size(), node.token_ids.size());
    for (float a : per_token[node.id]) EXPECT_NEAR(a, node.advantage, kTol) << "node " << node.id;
  }
}

TEST(Credit, InteriorRewardIsMeanOfDescendantLeaves) {
  rollout::Tree tree = three_level_tree();
  assign_credit(tree, {CreditRule::TreeRpo, false});
  // D: (1 + 0) / 2; A: leaves C E F G = (1 + 0 + 1 + 0) / 4; H, B: (0 + 0) / 2; root: 2 / 6.
  EXPECT_NEAR(tree.nodes[4].reward, 0.5, kTol);
  EXPECT_NEAR(tree.nodes[1].reward, 0.5, kTol);
  EXPECT_NEAR(tree.nodes[8].reward, 0.0, kTol);
  EXPECT_NEAR(tree.nodes[2].reward, 0.0, kTol);
  EXPECT_NEAR(tree.nodes[0].reward, 2.0 / 6.0, kTol);
}

TEST(Credit, TreeRpoIsSiblingRelativeAndSingleChildGetsZero) {
  rollout::Tree tree = three_level_tree();
  const auto per_token = assign_credit(tree, {CreditRule::TreeRpo, false});
  // {A .5, B 0}: mean .25. {C 1, D .5, E 0}: mean .5. {F 1, G 0}: mean .5. H alone: 0.
  // {I 0, J 0}: a tie, 0.
  expect_node_advantages(tree, {0, 0.25, -0.25, 0.5, 0, -0.5, 0.5, -0.5, 0, 0, 0});
  expect_spans_carry_node_advantage(tree, per_token);
}

TEST(Credit, FixedUsesTheTreeRpoRule) {
  rollout::Tree tree = three_level_tree();
  const auto per_token = assign_credit(tree, {CreditRule::Fixed, true});
  expect_node_advantages(tree, {0, 0.25, -0.25, 0.5, 0, -0.5, 0.5, -0.5, 0, 0, 0});
  expect_spans_carry_node_advantage(tree, per_token);
}

TEST(Credit, GrpoIsRewardMinusGroupMeanOnEveryTokenOfTheSample) {
  rollout::Tree tree = grpo_tree();
  const auto per_token = assign_credit(tree, {CreditRule::Grpo, false});
  // Rewards {1, 0, 0, 1}: mean 1/2. The chain S2 -> S2b is one sample with R = 0.
  expect_node_advantages(tree, {0, 0.5, -0.5, -0.5, 0.5, -0.5});
  expect_spans_carry_node_advantage(tree, per_token);
}

TEST(Credit, GrpoStdNormalizeDividesBySampleStd) {
  rollout::Tree tree = grpo_tree();
  const auto per_token = assign_credit(tree, {CreditRule::Grpo, true});
  // Unbiased std of {1, 0, 0, 1}: sqrt(4 * 0.25 / 3) = sqrt(1/3); TRL's divisor std + 1e-4.
  const double s = 0.5 / (std::sqrt(1.0 / 3.0) + 1e-4);
  expect_node_advantages(tree, {0, s, -s, -s, s, -s});
  expect_spans_carry_node_advantage(tree, per_token);
}

TEST(Credit, DrGrpoNeverDividesByStd) {
  rollout::Tree tree = grpo_tree();
  assign_credit(tree, {CreditRule::DrGrpo, true});
  expect_node_advantages(tree, {0, 0.5, -0.5, -0.5, 0.5, -0.5});
}

TEST(Credit, GrpoOnABranchingTreeStoresTheMeanOverSamplesThroughEachToken) {
  rollout::Tree tree = three_level_tree();
  assign_credit(tree, {CreditRule::Grpo, false});
  // mu = 1/3; a node's tokens carry the mean of (R_i - mu) over its leaves = V(n) - mu.
  const double m = 1.0 / 3.0;
  expect_node_advantages(tree, {0, 0.5 - m, -m, 1 - m, 0.5 - m, -m, 1 - m, -m, -m, -m, -m});
}

TEST(Credit, TempoAddsTheTdTermOnlyAtBranchingTokens) {
  rollout::Tree tree = trie_tree();
  const auto a = assign_credit(tree, {CreditRule::Tempo, false});
  // mu = 1/2, V(X) = 2/3, V(P) = 1/2. Token value = V(n) - mu, plus V(n) - V(parent) on the
  // first token of a child of a branching node (the mean over samples of R_i - mu + TD).
  ASSERT_EQ(a[1].size(), 2u);
  EXPECT_NEAR(a[1][0], (2.0 / 3 - 0.5) + (2.0 / 3 - 0.5), kTol); // X, branching token: 1/3
  EXPECT_NEAR(a[1][1], 2.0 / 3 - 0.5, kTol);                     // X, inside the span: 1/6
  EXPECT_NEAR(a[2][0], -0.5 + (0 - 0.5), kTol);                  // Y: -1
  EXPECT_NEAR(a[3][0], 0.0 + (0.5 - 2.0 / 3), kTol);             // P: -1/6
  EXPECT_NEAR(a[4][0], 0.5 + (1 - 2.0 / 3), kTol);               // Q: 5/6
  EXPECT_NEAR(a[5][0], 0.5 + (1 - 0.5), kTol);                   // K first: 1
  EXPECT_NEAR(a[5][1], 0.5, kTol);                               // K second: R - mu only
  EXPECT_NEAR(a[6][0], -0.5 + (0 - 0.5), kTol);                  // L: -1
  // node.advantage keeps the GRPO part V(n) - mu.
  EXPECT_NEAR(tree.nodes[1].advantage, 1.0 / 6, kTol);
  EXPECT_NEAR(tree.nodes[5].advantage, 0.5, kTol);
}

TEST(Credit, TempoStdNormalizeScalesBothTerms) {
  rollout::Tree tree = trie_tree();
  const auto a = assign_credit(tree, {CreditRule::Tempo, true});
  // Leaf rewards {0, 1, 1, 0}: unbiased std sqrt(1/3).
  const double scale = 1.0 / (std::sqrt(1.0 / 3.0) + 1e-4);
  EXPECT_NEAR(a[1][0], (1.0 / 3) * scale, kTol);
  EXPECT_NEAR(a[1][1], (1.0 / 6) * scale, kTol);
  EXPECT_NEAR(a[3][0], (-1.0 / 6) * scale, kTol);
}

TEST(Credit, TreePoAveragesDeviationsOverDepthSubgroups) {
  rollout::Tree tree = three_level_tree();
  const auto per_token = assign_credit(tree, {CreditRule::TreePo, false});
  // Per leaf, mean over its ancestors holding >= 2 leaves (root always) of R_i - V(ancestor):
  //   C: (1 - 1/2 [A] + 1 - 1/3 [root]) / 2 = 7/12      E: (-1/2 - 1/3) / 2 = -5/12
  //   F: (1/2 [D] + 1/2 [A] + 2/3) / 3 = 5/9            G: (-1/2 - 1/2 - 1/3) / 3 = -4/9
  //   I, J: (0 [H] + 0 [B] - 1/3) / 3 = -1/9
  // Interior nodes: mean over their leaves. D: (5/9 - 4/9) / 2 = 1/18;
  // A: (7/12 - 5/12 + 5/9 - 4/9) / 4 = 5/72; B, H: -1/9.
  expect_node_advantages(tree, {0, 5.0 / 72, -1.0 / 9, 7.0 / 12, 1.0 / 18, -5.0 / 12, 5.0 / 9,
                                -4.0 / 9, -1.0 / 9, -1.0 / 9, -1.0 / 9});
  expect_spans_carry_node_advantage(tree, per_token);
}

class AgreeingLeaves : public ::testing::TestWithParam<CreditRule> {};

TEST_P(AgreeingLeaves, AllCorrectAndAllWrongTreesGetZeroAdvantage) {
  for (double r : {1.0, 0.0}) {
    rollout::Tree tree = three_level_tree(r, r, r, r, r, r);
    EXPECT_TRUE(zero_signal(tree));
    const auto per_token = assign_credit(tree, {GetParam(), true});
    for (const auto& node : tree.nodes) {
      EXPECT_NEAR(node.reward, r, kTol) << "node " << node.id;
      EXPECT_NEAR(node.advantage, 0.0, kTol) << "node " << node.id;
      for (float a : per_token[node.id]) EXPECT_NEAR(a, 0.0, kTol);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryRule, AgreeingLeaves,
                         ::testing::Values(CreditRule::TreeRpo, CreditRule::Grpo,
                                           CreditRule::DrGrpo, CreditRule::Tempo,
                                           CreditRule::TreePo, CreditRule::Fixed));

TEST(Credit, MixedLeavesAreNotZeroSignal) {
  EXPECT_FALSE(zero_signal(three_level_tree()));
  EXPECT_FALSE(zero_signal(three_level_tree(0, 0, 0, 0, 0, 1)));
}

TEST(Credit, RuleFollowsAlgorithmAndDrGrpoLoss) {
  EXPECT_EQ(credit_rule_for("treerpo", "group-token-mean"), CreditRule::TreeRpo);
  EXPECT_EQ(credit_rule_for("grpo", "token-mean"), CreditRule::Grpo);
  EXPECT_EQ(credit_rule_for("grpo", "dr-grpo"), CreditRule::DrGrpo);
  EXPECT_EQ(credit_rule_for("tempo", "token-mean"), CreditRule::Tempo);
  EXPECT_EQ(credit_rule_for("treepo", "token-mean"), CreditRule::TreePo);
  EXPECT_EQ(credit_rule_for("fixed", "group-token-mean"), CreditRule::Fixed);
  EXPECT_THROW(credit_rule_for("ppo", "token-mean"), Error);
}

TEST(Credit, LossGroupsAreSiblingSetsForTreeRpoAndOneGroupForSampleRules) {
  const rollout::Tree tree = three_level_tree();
  // Sibling sets keyed by parent; H (an only child) and the root are in none.
  EXPECT_EQ(loss_groups(tree, CreditRule::TreeRpo),
            (std::vector<int32_t>{-1, 0, 0, 1, 1, 1, 4, 4, -1, 8, 8}));
  EXPECT_EQ(loss_groups(tree, CreditRule::Grpo),
            (std::vector<int32_t>{-1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(Credit, RejectsAParentAfterItsChild) {
  rollout::Tree tree = three_level_tree();
  tree.nodes[3].parent = 5;
  EXPECT_THROW(assign_credit(tree, {}), Error);
}

} // namespace
} // namespace treerpo::rl
