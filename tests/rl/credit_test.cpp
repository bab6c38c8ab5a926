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
                                       const std::vector<SpanCredit>& credit) {
  ASSERT_EQ(credit.size(), tree.nodes.size());
  for (const auto& node : tree.nodes) {
    ASSERT_EQ(credit[node.id].mean.size(), node.token_ids.size());
    for (float a : credit[node.id].mean) EXPECT_NEAR(a, node.advantage, kTol) << "node " << node.id;
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

// A node whose mean over its children differs from its mean over its descendant leaves, with a
// sibling, so the two rules give different advantages (DESIGN §4 rule 5: leaves):
//   root -> A[1]{10}, B[2]{20}=0     A -> A1[3]{30}=1, A2[4]{40}     A2 -> three leaves = 0
// A over leaves: 1/4 (over children it would be (1 + 0) / 2 = 1/2). {A 1/4, B 0}: mean 1/8, so
// A(A) = +1/8 and A(B) = -1/8 (children's mean: +-1/4). {A1 1, A2 0}: +-1/2.
TEST(Credit, InteriorRewardCountsLeavesNotChildren) {
  rollout::Tree tree = testing::with_root({1});
  const int32_t a = testing::grow(tree, 0, {10});
  testing::leaf(tree, testing::grow(tree, 0, {20}), 0);
  testing::leaf(tree, testing::grow(tree, a, {30}), 1);
  const int32_t a2 = testing::grow(tree, a, {40});
  for (int32_t t : {50, 51, 52}) testing::leaf(tree, testing::grow(tree, a2, {t}), 0);
  assign_credit(tree, {CreditRule::TreeRpo, false});
  EXPECT_NEAR(tree.nodes[a].reward, 0.25, kTol);
  EXPECT_NEAR(tree.nodes[0].reward, 0.2, kTol); // 1 of 5 leaves
  expect_node_advantages(tree, {0, 0.125, -0.125, 0.5, -0.5, 0, 0, 0});
}

TEST(Credit, PerSequenceMeanWeighsEachSampleByOneOverItsLength) {
  // grpo_tree: S1 (2 tokens) +.5, S2 -> S2b (1 + 2 tokens) -.5, S3 (1) -.5, S4 (3) +.5.
  rollout::Tree tree = grpo_tree();
  CreditOptions options{CreditRule::Grpo, false};
  options.per_sequence_mean = true;
  const auto credit = assign_credit(tree, options);
  EXPECT_NEAR(credit[1].positive[0], 0.5 / 2, kTol);
  EXPECT_NEAR(credit[1].weight[1], 1.0 / 2, kTol);
  EXPECT_NEAR(credit[2].negative[0], -0.5 / 3, kTol);
  EXPECT_NEAR(credit[5].negative[1], -0.5 / 3, kTol);
  EXPECT_NEAR(credit[3].negative[0], -0.5, kTol);
  EXPECT_NEAR(credit[4].weight[2], 1.0 / 3, kTol);
  // The counts and the per-sample means stay unweighted.
  EXPECT_EQ(credit[2].negative_samples[0], 1);
  EXPECT_NEAR(credit[2].mean[0], -0.5, kTol);
  // Node-credit rules have no sequences to average.
  rollout::Tree nodes = three_level_tree();
  EXPECT_THROW(assign_credit(nodes, {CreditRule::TreeRpo, false, true}), Error);
}

// TreePO on grpo_tree: every depth-1 node holds one sample, so A = R - 1/2 = +-.5 per sample.
// (token, sample) pairs: +.5 on S1 (2) and S4 (3), -.5 on S2+S2b (3) and S3 (1): n = 9,
// mean = (5 * .5 - 4 * .5) / 9 = 1/18, unbiased variance = (5 (.5 - 1/18)^2 + 4 (.5 + 1/18)^2) / 8
// = (20/9) / 8 = 5/18, so scale = 1 / sqrt(5/18 + 1e-8) and S1 becomes (.5 - 1/18) * scale =
// 0.843274.
TEST(Credit, WhiteningIsOverEveryTokenOfEverySampleOfTheBatch) {
  std::vector<rollout::Tree> trees = {grpo_tree()};
  assign_credit(trees[0], {CreditRule::TreePo, false});
  const Whitening w = whitening(trees);
  EXPECT_NEAR(w.shift, 1.0 / 18, kTol);
  EXPECT_NEAR(w.scale, 1.0 / std::sqrt(5.0 / 18 + 1e-8), kTol);
  CreditOptions options{CreditRule::TreePo, false};
  options.shift = w.shift;
  options.scale = w.scale;
  const auto credit = assign_credit(trees[0], options);
  EXPECT_NEAR(trees[0].nodes[1].advantage, 0.843274, 1e-6);
  EXPECT_NEAR(credit[1].positive[0], 0.843274, 1e-6);
  EXPECT_NEAR(credit[3].negative[0], (-0.5 - 1.0 / 18) * w.scale, 1e-6);
  // Two copies of the batch: the same mean, the variance's n - 1 moves from 8 to 17.
  trees.push_back(trees[0]);
  assign_credit(trees[0], {CreditRule::TreePo, false});
  assign_credit(trees[1], {CreditRule::TreePo, false});
  // sum of n (A - mean)^2 = 5 (4/9)^2 + 4 (5/9)^2 = 20/9 per copy.
  EXPECT_NEAR(whitening(trees).scale, 1.0 / std::sqrt(2 * 20.0 / 9 / 17 + 1e-8), kTol);
  // Node credit has no samples to whiten.
  rollout::Tree nodes = three_level_tree();
  options.rule = CreditRule::TreeRpo;
  EXPECT_THROW(assign_credit(nodes, options), Error);
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
  ASSERT_EQ(a[1].mean.size(), 2u);
  EXPECT_NEAR(a[1].mean[0], (2.0 / 3 - 0.5) + (2.0 / 3 - 0.5), kTol); // X, branching token: 1/3
  EXPECT_NEAR(a[1].mean[1], 2.0 / 3 - 0.5, kTol);                     // X, inside the span: 1/6
  EXPECT_NEAR(a[2].mean[0], -0.5 + (0 - 0.5), kTol);                  // Y: -1
  EXPECT_NEAR(a[3].mean[0], 0.0 + (0.5 - 2.0 / 3), kTol);             // P: -1/6
  EXPECT_NEAR(a[4].mean[0], 0.5 + (1 - 2.0 / 3), kTol);               // Q: 5/6
  EXPECT_NEAR(a[5].mean[0], 0.5 + (1 - 0.5), kTol);                   // K first: 1
  EXPECT_NEAR(a[5].mean[1], 0.5, kTol);                               // K second: R - mu only
  EXPECT_NEAR(a[6].mean[0], -0.5 + (0 - 0.5), kTol);                  // L: -1
  // node.advantage keeps the GRPO part V(n) - mu.
  EXPECT_NEAR(tree.nodes[1].advantage, 1.0 / 6, kTol);
  EXPECT_NEAR(tree.nodes[5].advantage, 0.5, kTol);
}

TEST(Credit, TempoStdNormalizeScalesBothTerms) {
  rollout::Tree tree = trie_tree();
  const auto a = assign_credit(tree, {CreditRule::Tempo, true});
  // Leaf rewards {0, 1, 1, 0}: unbiased std sqrt(1/3).
  const double scale = 1.0 / (std::sqrt(1.0 / 3.0) + 1e-4);
  EXPECT_NEAR(a[1].mean[0], (1.0 / 3) * scale, kTol);
  EXPECT_NEAR(a[1].mean[1], (1.0 / 6) * scale, kTol);
  EXPECT_NEAR(a[3].mean[0], (-1.0 / 6) * scale, kTol);
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

TEST(Credit, TempoCountsEveryRepeatedSample) {
  rollout::Tree tree = testing::repeated_trie_tree();
  const auto c = assign_credit(tree, {CreditRule::Tempo, false});
  // mu = (3 * 1 + 0 + 0) / 5 = 3/5 and V(X) = 3/4 only if T counts three times.
  EXPECT_NEAR(tree.nodes[0].reward, 0.6, kTol);
  EXPECT_NEAR(tree.nodes[1].reward, 0.75, kTol);
  // X's token, a branching token (the root has two children): TD = 3/4 - 3/5 = 3/20. The three
  // T samples get 1 - 3/5 + 3/20 = 11/20, the F sample -3/5 + 3/20 = -9/20.
  EXPECT_EQ(c[1].samples, 4);
  EXPECT_NEAR(c[1].positive[0], 3 * 0.55, kTol);
  EXPECT_NEAR(c[1].negative[0], -0.45, kTol);
  EXPECT_EQ(c[1].positive_samples[0], 3);
  EXPECT_EQ(c[1].negative_samples[0], 1);
  EXPECT_NEAR(c[1].mean[0], (3 * 0.55 - 0.45) / 4, kTol);
  // T: TD = 1 - 3/4, so 1 - 3/5 + 1/4 = 13/20 for each of its three samples.
  EXPECT_EQ(c[3].samples, 3);
  EXPECT_NEAR(c[3].positive[0], 3 * 0.65, kTol);
  EXPECT_EQ(c[3].positive_samples[0], 3);
  EXPECT_NEAR(c[3].mean[0], 0.65, kTol);
  // F: 0 - 3/5 + (0 - 3/4) = -27/20. Y: 0 - 3/5 + (0 - 3/5) = -6/5.
  EXPECT_NEAR(c[4].negative[0], -1.35, kTol);
  EXPECT_NEAR(c[2].negative[0], -1.2, kTol);
  EXPECT_EQ(c[2].negative_samples[0], 1);
  // node.advantage = V(n) - mu: X 3/20, T 2/5, F and Y -3/5.
  expect_node_advantages(tree, {0, 0.15, -0.6, 0.4, -0.6});
}

TEST(Credit, StdCountsEveryRepeatedSample) {
  rollout::Tree tree = testing::repeated_trie_tree();
  const auto c = assign_credit(tree, {CreditRule::Grpo, true});
  // Rewards {1, 1, 1, 0, 0}: mean 3/5, unbiased variance (3 * 4/25 + 2 * 9/25) / 4 = 3/10.
  const double scale = 1.0 / (std::sqrt(0.3) + 1e-4);
  EXPECT_NEAR(c[3].mean[0], 0.4 * scale, kTol);
  EXPECT_NEAR(c[3].positive[0], 3 * 0.4 * scale, kTol);
  EXPECT_NEAR(c[1].negative[0], -0.6 * scale, kTol);
}

TEST(Credit, APrefixSampleEndsAtAnEmptyLeaf) {
  // Samples [5 3 7]=1 and [5 3]=0: X{5,3} -> K{7}=1, E{}=0 (the trie's end marker).
  rollout::Tree tree = testing::with_root({1});
  const int32_t x = testing::grow(tree, 0, {5, 3});
  testing::leaf(tree, testing::grow(tree, x, {7}), 1);
  testing::leaf(tree, testing::grow(tree, x, {}), 0);
  const auto c = assign_credit(tree, {CreditRule::Tempo, false});
  // mu = V(X) = 1/2; X's first token is not a branching token (X is the root's only child).
  EXPECT_EQ(c[1].samples, 2);
  EXPECT_NEAR(c[1].positive[0], 0.5, kTol);
  EXPECT_NEAR(c[1].negative[0], -0.5, kTol);
  EXPECT_NEAR(c[1].mean[1], 0.0, kTol);
  // K: 1 - 1/2 + (1 - 1/2).
  EXPECT_NEAR(c[2].mean[0], 1.0, kTol);
  EXPECT_EQ(c[3].samples, 1);
  EXPECT_TRUE(c[3].mean.empty());
}

TEST(Credit, TreePoSpanCreditSumsTrajectoryAdvantagesBySign) {
  rollout::Tree tree = three_level_tree();
  const auto c = assign_credit(tree, {CreditRule::TreePo, false});
  // A's tokens lie on C 7/12, E -5/12, F 5/9, G -4/9 (see TreePoAveragesDeviationsOverDepth...).
  EXPECT_EQ(c[1].samples, 4);
  EXPECT_NEAR(c[1].positive[1], 7.0 / 12 + 5.0 / 9, kTol);
  EXPECT_NEAR(c[1].negative[1], -5.0 / 12 - 4.0 / 9, kTol);
  EXPECT_EQ(c[1].positive_samples[1], 2);
  EXPECT_EQ(c[1].negative_samples[1], 2);
  // H's lie on I and J, both -1/9.
  EXPECT_NEAR(c[8].negative[0], -2.0 / 9, kTol);
  EXPECT_EQ(c[8].samples, 2);
}

TEST(Credit, TreeRpoNodesAreTheirOwnUnit) {
  rollout::Tree tree = three_level_tree();
  const auto c = assign_credit(tree, {CreditRule::TreeRpo, false});
  EXPECT_EQ(c[1].samples, 1);
  EXPECT_NEAR(c[1].positive[0], 0.25, kTol);
  EXPECT_NEAR(c[2].negative[0], -0.25, kTol);
  EXPECT_EQ(c[4].positive_samples[0] + c[4].negative_samples[0], 0); // D: A = 0
}

TEST(Credit, RejectsALeafStandingForNoSamples) {
  rollout::Tree tree = three_level_tree();
  tree.nodes[3].samples = 0;
  EXPECT_THROW(assign_credit(tree, {}), Error);
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
      for (float a : per_token[node.id].mean) EXPECT_NEAR(a, 0.0, kTol);
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
