// The clipped loss on the hand tree with chosen ratios; expected values from the PPO-clip formula.
#include <gtest/gtest.h>

#include <cmath>

#include "hand_trees.h"
#include "treerpo/rl/loss.h"
#include "treerpo/util/error.h"

namespace treerpo::rl {
namespace {

using testing::three_level_tree;

// The hand tree with TreeRPO advantages, sampling log-probs 0, and current log-probs log r with
// these ratios (pack order; prompt and H's tokens are outside the loss):
//   idx  3 A  A=+.25 r=1.0  -> -.25            idx  9 E  A=-.5  r=1.0 -> +.5
//   idx  4 A  A=+.25 r=1.5  -> -.30 (clipped)  idx 10 F  A=+.5  r=1.0 -> -.5
//   idx  5 B  A=-.25 r=0.5  -> +.20 (clipped)  idx 11 G  A=-.5  r=1.5 -> +.75
//   idx  6 C  A=+.5  r=1.0  -> -.5             idx 14 I, 15 J  A=0 r=1 -> 0
//   idx  7 C  A=+.5  r=0.5  -> -.25            idx 12, 13 H (out of the loss) r=1.5
//   idx  8 D  A=0    r=1.5  -> 0
// Group sums: {A,B} -.35 over 3, {C,D,E} -.25 over 4, {F,G} +.25 over 2, {I,J} 0 over 2.
struct HandCase {
  PackedBatch packed;
  at::Tensor logprobs;
};

HandCase hand_case() {
  rollout::Tree tree = three_level_tree();
  for (auto& node : tree.nodes) node.logprobs.assign(node.token_ids.size(), 0.0f);
  const auto advantages = assign_credit(tree, {CreditRule::TreeRpo, false});
  HandCase c{pack_tree(tree, advantages, CreditRule::TreeRpo), {}};
  std::vector<double> ratio(16, 1.0);
  ratio[4] = ratio[8] = ratio[11] = ratio[12] = ratio[13] = 1.5;
  ratio[5] = ratio[7] = 0.5;
  std::vector<float> logs;
  for (double r : ratio) logs.push_back(static_cast<float>(std::log(r)));
  c.logprobs = at::tensor(at::ArrayRef<float>(logs)).set_requires_grad(true);
  return c;
}

LossOptions options(const std::string& agg) {
  LossOptions o;
  o.agg = agg;
  o.clip_low = 0.2;
  o.clip_high = 0.2;
  o.dr_grpo_constant = 10;
  return o;
}

TEST(PolicyLoss, GroupTokenMeanSumsPerGroupTokenMeans) {
  HandCase c = hand_case();
  const LossResult result = policy_loss(c.logprobs, c.packed, options("group-token-mean"));
  EXPECT_NEAR(result.loss.item<double>(), -0.35 / 3 - 0.25 / 4 + 0.25 / 2 + 0.0, 1e-6);
  EXPECT_EQ(result.tokens, 11);
  EXPECT_EQ(result.groups, 4);
  EXPECT_NEAR(result.clip_fraction, 2.0 / 11, 1e-9);
  EXPECT_NEAR(result.mean_ratio, 11.5 / 11, 1e-6);
}

TEST(PolicyLoss, TokenMeanAveragesOverAllLossTokens) {
  HandCase c = hand_case();
  const LossResult result = policy_loss(c.logprobs, c.packed, options("token-mean"));
  EXPECT_NEAR(result.loss.item<double>(), (-0.35 - 0.25 + 0.25) / 11, 1e-6);
}

// grpo_tree with GRPO advantages (no std: S1 and S4 +.5, S2 -> S2b, S3 -.5), r = 1 except S4's
// first token (pack index 6) at r = 1.5, clipped to 1.2: per token -A, there -.6.
// Pack order: prompt 0-1, S1 2-3, S2 4, S3 5, S4 6-8, S2b 9-10.
struct GrpoCase {
  PackedBatch packed;
  at::Tensor logprobs;
};

GrpoCase grpo_case(bool per_sequence_mean) {
  rollout::Tree tree = testing::grpo_tree();
  for (auto& node : tree.nodes) node.logprobs.assign(node.token_ids.size(), 0.0f);
  CreditOptions credit{CreditRule::Grpo, false};
  credit.per_sequence_mean = per_sequence_mean;
  GrpoCase c{pack_tree(tree, assign_credit(tree, credit), CreditRule::Grpo), {}};
  std::vector<float> logs(11, 0.0f);
  logs[6] = static_cast<float>(std::log(1.5));
  c.logprobs = at::tensor(at::ArrayRef<float>(logs)).set_requires_grad(true);
  return c;
}

TEST(PolicyLoss, DrGrpoSumsEachSequenceOverTheConstantThenAveragesSequences) {
  // Token sum: S1 -1, S2 +1.5, S3 +.5, S4 -1.6 = -.6; over 4 sequences of constant 10.
  GrpoCase c = grpo_case(false);
  const LossResult result = policy_loss(c.logprobs, c.packed, options("dr-grpo"));
  EXPECT_EQ(c.packed.sequences, 4);
  EXPECT_NEAR(result.loss.item<double>(), -0.6 / (10 * 4), 1e-7);
}

TEST(PolicyLoss, SeqMeanTokenMeanAveragesEachSequenceThenTheSequences) {
  // Sequence means: S1 -.5, S2 +.5, S3 +.5, S4 (-.6 - .5 - .5) / 3; mean over the 4.
  GrpoCase c = grpo_case(true);
  const LossResult result = policy_loss(c.logprobs, c.packed, options("seq-mean-token-mean"));
  const double expected = (-0.5 + 0.5 + 0.5 - 1.6 / 3) / 4;
  // (The token mean over the 9 tokens would be -.6 / 9 = -.067, against -.008 here.)
  EXPECT_NEAR(result.loss.item<double>(), expected, 1e-7);
  result.loss.backward();
  const at::Tensor grad = c.logprobs.grad();
  // d/d log r of -r A / (length * sequences): S1 -(.5) / (2 * 4), S2b +.5 / (3 * 4), and 0 at
  // S4's clipped token.
  EXPECT_NEAR(grad[2].item<double>(), -0.5 / 8, 1e-7);
  EXPECT_NEAR(grad[9].item<double>(), 0.5 / 12, 1e-7);
  EXPECT_NEAR(grad[6].item<double>(), 0.0, 1e-9);
  EXPECT_NEAR(grad[7].item<double>(), -0.5 / 12, 1e-7);
}

TEST(PolicyLoss, GradientIsMinusRatioTimesAdvantageUnlessClippedScaledByGroupSize) {
  HandCase c = hand_case();
  policy_loss(c.logprobs, c.packed, options("group-token-mean")).loss.backward();
  const at::Tensor grad = c.logprobs.grad();
  // d(-r A)/d log r = -r A, divided by the group's token count; 0 where the clipped term won.
  EXPECT_NEAR(grad[3].item<double>(), -1.0 * 0.25 / 3, 1e-6);
  EXPECT_NEAR(grad[4].item<double>(), 0.0, 1e-9);
  EXPECT_NEAR(grad[5].item<double>(), 0.0, 1e-9);
  EXPECT_NEAR(grad[7].item<double>(), -0.5 * 0.5 / 4, 1e-6);
  EXPECT_NEAR(grad[11].item<double>(), -1.5 * -0.5 / 2, 1e-6);
  EXPECT_NEAR(grad[0].item<double>(), 0.0, 1e-9);  // prompt
  EXPECT_NEAR(grad[12].item<double>(), 0.0, 1e-9); // only child H
}

TEST(PolicyLoss, ClipHigherWidensOnlyTheUpperBound) {
  HandCase c = hand_case();
  LossOptions o = options("token-mean");
  o.clip_high = 0.6; // r = 1.5 with A > 0 (idx 4) is no longer clipped: -.375 instead of -.3.
  const LossResult result = policy_loss(c.logprobs, c.packed, o);
  EXPECT_NEAR(result.loss.item<double>(), (-0.35 - 0.075 - 0.25 + 0.25) / 11, 1e-6);
  EXPECT_NEAR(result.clip_fraction, 1.0 / 11, 1e-9);
}

TEST(PolicyLoss, K3KlToTheReferenceIsAddedPerToken) {
  HandCase c = hand_case();
  // Reference equal to the current policy except idx 3, where ref - new = log 2:
  // k3 = 2 - log 2 - 1.
  at::Tensor ref = c.logprobs.detach().clone();
  ref[3] += std::log(2.0);
  LossOptions o = options("token-mean");
  o.kl_coef = 0.1;
  const LossResult result = policy_loss(c.logprobs, c.packed, o, &ref);
  const double k3 = 1.0 - std::log(2.0);
  EXPECT_NEAR(result.loss.item<double>(), (-0.35 + 0.1 * k3) / 11, 1e-6);
  EXPECT_NEAR(result.kl, k3 / 11, 1e-6);
}

TEST(PolicyLoss, KlWithoutReferenceIsRejected) {
  HandCase c = hand_case();
  LossOptions o = options("token-mean");
  o.kl_coef = 0.1;
  EXPECT_THROW(policy_loss(c.logprobs, c.packed, o), Error);
}

TEST(PolicyLoss, UnknownAggregationIsRejected) {
  HandCase c = hand_case();
  EXPECT_THROW(policy_loss(c.logprobs, c.packed, options("seq-mean")), Error);
}

TEST(PolicyLoss, ZeroSignalTreeGivesZeroLossAndZeroGradient) {
  rollout::Tree tree = three_level_tree(1, 1, 1, 1, 1, 1);
  const auto advantages = assign_credit(tree, {CreditRule::TreeRpo, false});
  const PackedBatch packed = pack_tree(tree, advantages, CreditRule::TreeRpo);
  const at::Tensor logprobs = at::full({packed.size()}, -0.7f).set_requires_grad(true);
  for (const char* agg : {"group-token-mean", "token-mean", "dr-grpo"}) {
    const LossResult result = policy_loss(logprobs, packed, options(agg));
    result.loss.backward();
    EXPECT_NEAR(result.loss.item<double>(), 0.0, 1e-9) << agg;
    EXPECT_NEAR(logprobs.grad().abs().sum().item<double>(), 0.0, 1e-9) << agg;
  }
}

// GRPO-shaped tree: one group, so group-token-mean equals token-mean.
TEST(PolicyLoss, GrpoTreeIsOneGroupSoGroupTokenMeanEqualsTokenMean) {
  rollout::Tree tree = testing::grpo_tree();
  for (auto& node : tree.nodes) node.logprobs.assign(node.token_ids.size(), 0.0f);
  const auto advantages = assign_credit(tree, {CreditRule::Grpo, false});
  const PackedBatch packed = pack_tree(tree, advantages, CreditRule::Grpo);
  const at::Tensor logprobs = at::zeros({packed.size()});
  // r = 1 everywhere: loss = -mean(A) over the 9 tokens: S1 2x.5, S2 1x-.5, S3 1x-.5, S4 3x.5,
  // S2b 2x-.5 -> -(1 - .5 - .5 + 1.5 - 1) / 9.
  const double expected = -(0.5 * 2 - 0.5 - 0.5 + 0.5 * 3 - 0.5 * 2) / 9;
  EXPECT_NEAR(policy_loss(logprobs, packed, options("group-token-mean")).loss.item<double>(),
              expected, 1e-6);
  EXPECT_NEAR(policy_loss(logprobs, packed, options("token-mean")).loss.item<double>(), expected,
              1e-6);
}

// TEMPO on a trie whose T leaf stands for three identical samples; X's token at r = 1.5, the rest
// at r = 1. Per sample and token (advantages from credit_test's TempoCountsEveryRepeatedSample):
//   X: three samples at A = .55 -> -min(1.5 * .55, 1.2 * .55) = -.66 each; one at A = -.45 ->
//      -min(1.5 * -.45, 1.2 * -.45) = +.675.
//   T: three at .65 -> -.65 each. F: one at -1.35 -> +1.35. Y: one at -1.2 -> +1.2.
// Sum -1.305 - 1.95 + 1.35 + 1.2 = -.705 over 9 sample tokens (3 x [5 3], [5 4], [6]).
TEST(PolicyLoss, SharedTokensCountOncePerSampleThroughThem) {
  rollout::Tree tree = testing::repeated_trie_tree();
  for (auto& node : tree.nodes) node.logprobs.assign(node.token_ids.size(), 0.0f);
  const auto credit = assign_credit(tree, {CreditRule::Tempo, false});
  const PackedBatch packed = pack_tree(tree, credit, CreditRule::Tempo);
  // Pack order: prompt, X, Y, T, F.
  const at::Tensor logprobs =
      at::tensor(at::ArrayRef<float>({0.0f, static_cast<float>(std::log(1.5)), 0.0f, 0.0f, 0.0f}));
  for (const char* agg : {"group-token-mean", "token-mean"}) {
    const LossResult result = policy_loss(logprobs, packed, options(agg));
    EXPECT_NEAR(result.loss.item<double>(), -0.705 / 9, 1e-6) << agg;
    EXPECT_EQ(result.tokens, 9);
    EXPECT_NEAR(result.clip_fraction, 3.0 / 9, 1e-6); // the three positive samples at X
    EXPECT_NEAR(result.mean_ratio, (4 * 1.5 + 5) / 9, 1e-6);
  }
  // Dr-GRPO: the token sum over the constant (10), averaged over the 5 sequences.
  EXPECT_NEAR(policy_loss(logprobs, packed, options("dr-grpo")).loss.item<double>(),
              -0.705 / (10 * 5), 1e-6);
  // k3 at T (ref - new = log 2) counts for each of T's three samples.
  at::Tensor ref = logprobs.clone();
  ref[3] += std::log(2.0);
  LossOptions o = options("token-mean");
  o.kl_coef = 0.1;
  const double k3 = 1.0 - std::log(2.0);
  const LossResult with_kl = policy_loss(logprobs, packed, o, &ref);
  EXPECT_NEAR(with_kl.loss.item<double>(), (-0.705 + 0.1 * 3 * k3) / 9, 1e-6);
  EXPECT_NEAR(with_kl.kl, 3 * k3 / 9, 1e-6);
}

// The same trie per sequence: [5 3] three times, (-.66 - .65) / 2 each; [5 4] (.675 + 1.35) / 2;
// [6] 1.2; mean over the 5 sequences. k3 at T weighs 1/2 for each of its three samples.
TEST(PolicyLoss, SeqMeanTokenMeanCountsEverySequenceThroughASharedToken) {
  rollout::Tree tree = testing::repeated_trie_tree();
  for (auto& node : tree.nodes) node.logprobs.assign(node.token_ids.size(), 0.0f);
  CreditOptions credit{CreditRule::Tempo, false};
  credit.per_sequence_mean = true;
  const PackedBatch packed = pack_tree(tree, assign_credit(tree, credit), CreditRule::Tempo);
  const at::Tensor logprobs =
      at::tensor(at::ArrayRef<float>({0.0f, static_cast<float>(std::log(1.5)), 0.0f, 0.0f, 0.0f}));
  const double expected = (3 * (-0.66 - 0.65) / 2 + (0.675 + 1.35) / 2 + 1.2) / 5;
  EXPECT_NEAR(policy_loss(logprobs, packed, options("seq-mean-token-mean")).loss.item<double>(),
              expected, 1e-6);
  at::Tensor ref = logprobs.clone();
  ref[3] += std::log(2.0);
  LossOptions o = options("seq-mean-token-mean");
  o.kl_coef = 0.1;
  const double k3 = 1.0 - std::log(2.0);
  EXPECT_NEAR(policy_loss(logprobs, packed, o, &ref).loss.item<double>(),
              expected + 0.1 * 1.5 * k3 / 5, 1e-6);
}

} // namespace
} // namespace treerpo::rl
