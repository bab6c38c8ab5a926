// Packing a scored tree: every unique token once, parents before children, and the per-token fields
// the loss reads.
#include <gtest/gtest.h>

#include "hand_trees.h"
#include "treerpo/rl/pack.h"
#include "treerpo/util/error.h"

namespace treerpo::rl {
namespace {

using testing::three_level_tree;

TEST(Pack, EveryUniqueTokenOnceWithItsPathParent) {
  rollout::Tree tree = three_level_tree();
  const auto advantages = assign_credit(tree, {CreditRule::TreeRpo, false});
  const PackedBatch packed = pack_tree(tree, advantages, CreditRule::TreeRpo);
  // Prompt 1 2 3, then spans in node order: A 10 11, B 20, C 30 31, D 40, E 50, F 60, G 70,
  // H 80 81, I 90, J 100.
  EXPECT_EQ(packed.tree.tokens,
            (std::vector<int32_t>{1, 2, 3, 10, 11, 20, 30, 31, 40, 50, 60, 70, 80, 81, 90, 100}));
  // A and B hang off the prompt's last token (2); C, D, E off A's last (4); F, G off D (8);
  // H off B (5); I, J off H's last (13).
  EXPECT_EQ(packed.tree.parent,
            (std::vector<int32_t>{-1, 0, 1, 2, 3, 2, 4, 6, 4, 4, 8, 8, 5, 12, 13, 13}));
  EXPECT_EQ(packed.node, (std::vector<int32_t>{0, 0, 0, 1, 1, 2, 3, 3, 4, 5, 6, 7, 8, 8, 9, 10}));
  EXPECT_EQ(packed.prompt_tokens, 3);
  EXPECT_EQ(packed.size(), tree.unique_tokens());
}

TEST(Pack, GroupsAreDenseSiblingSetsAndOnlyChildrenAreOutOfTheLoss) {
  rollout::Tree tree = three_level_tree();
  const auto advantages = assign_credit(tree, {CreditRule::TreeRpo, false});
  const PackedBatch packed = pack_tree(tree, advantages, CreditRule::TreeRpo);
  // {A, B} -> 0, {C, D, E} -> 1, {F, G} -> 2, {I, J} -> 3; prompt and H -> -1.
  EXPECT_EQ(packed.group,
            (std::vector<int32_t>{-1, -1, -1, 0, 0, 0, 1, 1, 1, 1, 2, 2, -1, -1, 3, 3}));
  EXPECT_EQ(packed.groups, 4);
  EXPECT_EQ(packed.loss_tokens(), 11);
  // Advantages by hand (see credit_test): A .25, B -.25, C .5, D 0, E -.5, F .5, G -.5, rest 0;
  // each node is one unit, so a loss token weighs 1 and carries its advantage under its sign.
  EXPECT_EQ(packed.advantage_positive,
            (std::vector<float>{0, 0, 0, 0.25f, 0.25f, 0, 0.5f, 0.5f, 0, 0, 0.5f, 0, 0, 0, 0, 0}));
  EXPECT_EQ(packed.advantage_negative,
            (std::vector<float>{0, 0, 0, 0, 0, -0.25f, 0, 0, 0, -0.5f, 0, -0.5f, 0, 0, 0, 0}));
  EXPECT_EQ(packed.positive_samples,
            (std::vector<float>{0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0}));
  EXPECT_EQ(packed.negative_samples,
            (std::vector<float>{0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}));
  EXPECT_EQ(packed.samples, (std::vector<float>{0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1}));
}

TEST(Pack, CarriesSamplingLogprobs) {
  rollout::Tree tree = three_level_tree();
  tree.nodes[3].logprobs = {-0.5f, -0.25f};
  const auto advantages = assign_credit(tree, {CreditRule::TreeRpo, false});
  const PackedBatch packed = pack_tree(tree, advantages, CreditRule::TreeRpo);
  EXPECT_EQ(packed.old_logprobs[0], 0.0f);
  EXPECT_EQ(packed.old_logprobs[6], -0.5f);
  EXPECT_EQ(packed.old_logprobs[7], -0.25f);
  EXPECT_EQ(packed.old_logprobs[8], -1.0f);
}

TEST(Pack, SampleRulesPutEveryGeneratedTokenInOneGroup) {
  rollout::Tree tree = three_level_tree();
  const auto advantages = assign_credit(tree, {CreditRule::Grpo, false});
  const PackedBatch packed = pack_tree(tree, advantages, CreditRule::Grpo);
  EXPECT_EQ(packed.groups, 1);
  // Every token counts once per sample (leaf) through it: the six samples' lengths are
  // C 2+2, E 2+1, F 2+1+1, G 2+1+1, I 1+2+1, J 1+2+1 = 23 (13 unique tokens).
  EXPECT_EQ(packed.loss_tokens(), 23);
  EXPECT_EQ(packed.samples[3], 4.0f);  // A: C E F G
  EXPECT_EQ(packed.samples[12], 2.0f); // H: I J
  // mu = 1/3. A's samples: C, F at 1 - 1/3, E, G at -1/3. H's: I, J at -1/3.
  EXPECT_NEAR(packed.advantage_positive[3], 4.0 / 3, 1e-6);
  EXPECT_NEAR(packed.advantage_negative[3], -2.0 / 3, 1e-6);
  EXPECT_EQ(packed.positive_samples[3], 2.0f);
  EXPECT_EQ(packed.negative_samples[3], 2.0f);
  EXPECT_NEAR(packed.advantage_positive[12], 0.0, 1e-6);
  EXPECT_NEAR(packed.advantage_negative[12], -2.0 / 3, 1e-6);
  EXPECT_EQ(packed.negative_samples[12], 2.0f);
}

TEST(Pack, RejectsASpanWithoutLogprobs) {
  rollout::Tree tree = three_level_tree();
  const auto advantages = assign_credit(tree, {CreditRule::TreeRpo, false});
  tree.nodes[5].logprobs.clear();
  EXPECT_THROW(pack_tree(tree, advantages, CreditRule::TreeRpo), Error);
}

TEST(ForwardCost, PackedCountsUniqueTokensPerGroupCountsContextPlusSpanPerGroupMember) {
  const rollout::Tree tree = three_level_tree();
  const ForwardCost cost = forward_cost(tree);
  EXPECT_EQ(cost.packed, 16);
  // Each child of a set of >= 2 is forwarded as prompt + ancestor spans + its own span:
  //   A 3+2, B 3+1; C (3+2)+2, D 5+1, E 5+1; F (5+1)+1, G 7; I (3+1+2)+1, J 7; H (only child) 0.
  EXPECT_EQ(cost.per_group, 5 + 4 + 7 + 6 + 6 + 7 + 7 + 7 + 7);
}

} // namespace
} // namespace treerpo::rl
