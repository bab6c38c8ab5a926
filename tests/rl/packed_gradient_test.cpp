// The packed-tree loss against the public reference's computation on the same tree: every sibling
// group forwarded separately (each child as its own sequence with its full context), token mean per
// group, summed over groups. Loss and every parameter gradient must agree to float32 tolerance.
#include <gtest/gtest.h>

#include <torch/types.h>

#include "hand_trees.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/rl/loss.h"

namespace treerpo::rl {
namespace {

model::Qwen2Config tiny_config() {
  model::Qwen2Config cfg;
  cfg.vocab_size = 128;
  cfg.hidden_size = 32;
  cfg.intermediate_size = 64;
  cfg.num_hidden_layers = 2;
  cfg.num_attention_heads = 4;
  cfg.num_key_value_heads = 2;
  return cfg;
}

// The reference, written straight from its description rather than through pack/policy_loss.
// Counts the tokens it forwards in `forwarded`.
torch::Tensor per_group_reference_loss(model::Qwen2& model, const rollout::Tree& tree,
                                       const std::vector<std::vector<float>>& advantages,
                                       double eps_low, double eps_high, int64_t& forwarded) {
  torch::Tensor total = torch::zeros({});
  for (const rollout::Node& parent : tree.nodes) {
    if (parent.children.size() < 2) continue;
    torch::Tensor group_sum = torch::zeros({});
    int64_t group_tokens = 0;
    for (int32_t c : parent.children) {
      const rollout::Node& child = tree.nodes[c];
      std::vector<int32_t> sequence = tree.context_ids(c);
      const auto context = static_cast<int64_t>(sequence.size());
      const auto span = static_cast<int64_t>(child.token_ids.size());
      sequence.insert(sequence.end(), child.token_ids.begin(), child.token_ids.end());
      forwarded += static_cast<int64_t>(sequence.size());
      const torch::Tensor logp = torch::log_softmax(model.forward(sequence), -1);
      // The logits at position p predict token p + 1.
      const torch::Tensor rows = torch::arange(context - 1, context - 1 + span);
      const torch::Tensor ids =
          torch::tensor(std::vector<int64_t>(child.token_ids.begin(), child.token_ids.end()));
      const torch::Tensor current = logp.index({rows, ids});
      const torch::Tensor old = torch::tensor(child.logprobs);
      const torch::Tensor adv = torch::tensor(advantages[c]);
      const torch::Tensor ratio = torch::exp(current - old);
      const torch::Tensor per_token =
          -torch::min(ratio * adv, torch::clamp(ratio, 1 - eps_low, 1 + eps_high) * adv);
      group_sum = group_sum + per_token.sum();
      group_tokens += span;
    }
    total = total + group_sum / static_cast<double>(group_tokens);
  }
  return total;
}

std::vector<torch::Tensor> take_gradients(model::Qwen2& model) {
  std::vector<torch::Tensor> grads;
  for (torch::Tensor p : model.parameters()) {
    grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
  return grads;
}

TEST(PackedGradient, EqualsPerGroupReferenceOnTheHandTree) {
  model::Qwen2 model = model::Qwen2::random(tiny_config(), 7, torch::kFloat32, torch::kCPU);
  rollout::Tree tree = testing::three_level_tree();
  const auto advantages = assign_credit(tree, {CreditRule::TreeRpo, false});

  // Sampling-time log-probs: the current ones shifted by 0.3 on two of every three tokens, one way
  // so the clipped term wins (r > 1.2 where A > 0, r < 0.8 where A < 0), the other way so it does
  // not; the rest unchanged (r = 1).
  PackedBatch packed = pack_tree(tree, advantages, CreditRule::TreeRpo);
  const torch::Tensor now = model.tree_logprobs(packed.tree).detach();
  const float shifts[] = {0.0f, -0.3f, 0.3f};
  // Pack order is the prompt, then the spans in node order.
  int64_t k = 0;
  for (auto& node : tree.nodes) {
    for (size_t t = 0; t < node.logprobs.size(); ++t, ++k) {
      const float sign = advantages[node.id][t] < 0 ? -1.0f : 1.0f;
      node.logprobs[t] = now[packed.prompt_tokens + k].item<float>() + sign * shifts[k % 3];
    }
  }
  packed = pack_tree(tree, advantages, CreditRule::TreeRpo);

  LossOptions options;
  options.agg = "group-token-mean";
  const LossResult packed_result = policy_loss(model.tree_logprobs(packed.tree), packed, options);
  packed_result.loss.backward();
  const auto packed_grads = take_gradients(model);
  EXPECT_GT(packed_result.clip_fraction, 0.0);

  int64_t forwarded = 0;
  const torch::Tensor reference = per_group_reference_loss(
      model, tree, advantages, options.clip_low, options.clip_high, forwarded);
  reference.backward();
  const auto reference_grads = take_gradients(model);

  EXPECT_NEAR(packed_result.loss.item<double>(), reference.item<double>(), 1e-5);
  ASSERT_EQ(packed_grads.size(), reference_grads.size());
  double largest = 0.0;
  for (size_t p = 0; p < packed_grads.size(); ++p) {
    largest = std::max(largest, reference_grads[p].abs().max().item<double>());
    EXPECT_TRUE(torch::allclose(packed_grads[p], reference_grads[p], 1e-4, 1e-6))
        << "parameter " << p << ": max |diff| "
        << (packed_grads[p] - reference_grads[p]).abs().max().item<double>();
  }
  EXPECT_GT(largest, 0.0); // the comparison is not between two zero gradients

  // The reference forwarded what forward_cost says; the packed forward each unique token once.
  const ForwardCost cost = forward_cost(tree);
  EXPECT_EQ(forwarded, cost.per_group);
  EXPECT_EQ(cost.packed, packed.size());
}

} // namespace
} // namespace treerpo::rl
