// train.max_tokens_per_forward: the tree's loss computed piece by piece (two passes) gives the
// same loss, statistics and parameter gradients as the whole tree in one forward, for every
// aggregation, with and without a KL reference and with gradient checkpointing.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "../common/tiny_qwen2.h"
#include "../rl/hand_trees.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/model/tree_pieces.h"
#include "treerpo/rl/credit.h"
#include "treerpo/rl/pack.h"
#include "treerpo/train/tree_loss.h"

namespace treerpo::train {
namespace {

struct Outcome {
  rl::LossResult result;
  std::vector<torch::Tensor> grads;
};

// The three-level hand tree with sampling log-probs shifted off the model's so some ratios clip.
rl::PackedBatch packed_tree(model::Qwen2& model) {
  rollout::Tree tree = rl::testing::three_level_tree();
  const auto credit = rl::assign_credit(tree, {rl::CreditRule::TreeRpo, false});
  rl::PackedBatch packed = rl::pack_tree(tree, credit, rl::CreditRule::TreeRpo);
  const torch::Tensor now = model.tree_logprobs(packed.tree).detach();
  const float shifts[] = {0.0f, -0.3f, 0.3f, 0.25f};
  for (size_t i = 0; i < packed.old_logprobs.size(); ++i) {
    if (packed.group[i] >= 0)
      packed.old_logprobs[i] = now[static_cast<int64_t>(i)].item<float>() + shifts[i % 4];
  }
  return packed;
}

Outcome run(model::Qwen2& model, model::Qwen2* reference, const rl::PackedBatch& packed,
            const rl::LossOptions& options, int64_t max_tokens) {
  for (torch::Tensor p : model.parameters()) p.mutable_grad() = torch::Tensor();
  Outcome o;
  o.result = tree_loss_backward(model, packed, {options, reference, {}, max_tokens}, 0.7);
  for (torch::Tensor p : model.parameters()) o.grads.push_back(p.grad().clone());
  return o;
}

void expect_equal(const Outcome& pieces, const Outcome& whole) {
  EXPECT_NEAR(pieces.result.loss.item<double>(), whole.result.loss.item<double>(), 1e-6);
  EXPECT_DOUBLE_EQ(pieces.result.clip_fraction, whole.result.clip_fraction);
  EXPECT_NEAR(pieces.result.mean_ratio, whole.result.mean_ratio, 1e-6);
  EXPECT_NEAR(pieces.result.kl, whole.result.kl, 1e-6);
  EXPECT_EQ(pieces.result.tokens, whole.result.tokens);
  double largest = 0;
  for (size_t p = 0; p < whole.grads.size(); ++p) {
    largest = std::max(largest, whole.grads[p].abs().max().item<double>());
    EXPECT_TRUE(torch::allclose(pieces.grads[p], whole.grads[p], 1e-5, 1e-7))
        << "parameter " << p << ": max |diff| "
        << (pieces.grads[p] - whole.grads[p]).abs().max().item<double>();
  }
  EXPECT_GT(largest, 0.0);
}

TEST(TreeLoss, PiecesGiveTheWholeTreesLossAndGradients) {
  model::Qwen2 policy = model::Qwen2::random(treerpo::testing::tiny_qwen2(128, 32, 64), 3,
                                             torch::kFloat32, torch::kCPU);
  model::Qwen2 reference = model::Qwen2::random(treerpo::testing::tiny_qwen2(128, 32, 64), 4,
                                                torch::kFloat32, torch::kCPU);
  const rl::PackedBatch packed = packed_tree(policy);
  ASSERT_EQ(packed.size(), 16);
  // The longest chain is 7 tokens (prompt, A, D, F), so any budget below 14 cuts the 16-token tree
  // into two pieces; the loss is the same function either way.
  ASSERT_EQ(model::split_tree(packed.tree, 6).size(), 2u);
  for (const char* agg : {"group-token-mean", "token-mean", "seq-mean-token-mean", "dr-grpo"}) {
    for (bool kl : {false, true}) {
      rl::LossOptions options;
      options.agg = agg;
      options.clip_high = 0.28;
      options.kl_coef = kl ? 0.05 : 0.0;
      model::Qwen2* ref = kl ? &reference : nullptr;
      SCOPED_TRACE(std::string(agg) + (kl ? " + kl" : ""));
      const Outcome whole = run(policy, ref, packed, options, 0);
      expect_equal(run(policy, ref, packed, options, 6), whole);
      expect_equal(run(policy, ref, packed, options, 15), whole);
    }
  }
  // With the layers recomputed in the backward too.
  policy.set_gradient_checkpointing(true);
  rl::LossOptions options;
  const Outcome whole = run(policy, nullptr, packed, options, 0);
  expect_equal(run(policy, nullptr, packed, options, 5), whole);
}

} // namespace
} // namespace treerpo::train
