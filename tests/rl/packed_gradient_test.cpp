// The packed-tree loss against the public reference's computation on the same tree: every sibling
// group forwarded separately (each child as its own sequence with its full context), token mean per
// group, summed over groups. Loss and every parameter gradient must agree to float32 tolerance.
#include <gtest/gtest.h>

#include <algorithm>

#include <torch/types.h>

#include "../common/tiny_qwen2.h"
#include "hand_trees.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/rl/loss.h"

namespace treerpo::rl {
namespace {

model::Qwen2Config tiny_config() {
  return treerpo::testing::tiny_qwen2(128, 32, 64);
}

// The reference, written straight from its description rather than through pack/policy_loss.
// Counts the tokens it forwards in `forwarded`.
torch::Tensor per_group_reference_loss(model::Qwen2& model, const rollout::Tree& tree,
                                       const std::vector<SpanCredit>& advantages, double eps_low,
                                       double eps_high, int64_t& forwarded) {
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
      const torch::Tensor adv = torch::tensor(advantages[c].mean);
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

// Every parameter gradient agrees to float32 tolerance, and they are not all zero.
void expect_same_gradients(const std::vector<torch::Tensor>& packed,
                           const std::vector<torch::Tensor>& reference) {
  ASSERT_EQ(packed.size(), reference.size());
  double largest = 0.0;
  for (size_t p = 0; p < packed.size(); ++p) {
    largest = std::max(largest, reference[p].abs().max().item<double>());
    EXPECT_TRUE(torch::allclose(packed[p], reference[p], 1e-4, 1e-6))
        << "parameter " << p << ": max |diff| "
        << (packed[p] - reference[p]).abs().max().item<double>();
  }
  EXPECT_GT(largest, 0.0); // the comparison is not between two zero gradients
}

// A sample rule's reference: every sample forwarded as its own sequence (prompt + answer), each
// token's PPO-clip term with that sample's advantage, token mean over all the samples' tokens (one
// group). `advantage(i, t)` is the rule's value for sample i's token t; `old(i, t)` its sampling
// log-prob.
struct Sample {
  std::vector<int32_t> answer;
  double reward = 0.0;
};

template <typename Advantage, typename Old>
torch::Tensor per_sample_reference_loss(model::Qwen2& model, const std::vector<int32_t>& prompt,
                                        const std::vector<Sample>& samples, Advantage advantage,
                                        Old old, double eps_low, double eps_high) {
  torch::Tensor total = torch::zeros({});
  int64_t tokens = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    std::vector<int32_t> sequence = prompt;
    sequence.insert(sequence.end(), samples[i].answer.begin(), samples[i].answer.end());
    const torch::Tensor logp = torch::log_softmax(model.forward(sequence), -1);
    for (size_t t = 0; t < samples[i].answer.size(); ++t) {
      const auto row = static_cast<int64_t>(prompt.size() + t) - 1;
      const torch::Tensor ratio = torch::exp(logp[row][samples[i].answer[t]] - old(i, t));
      const double a = advantage(i, t);
      total = total - torch::min(ratio * a, torch::clamp(ratio, 1 - eps_low, 1 + eps_high) * a);
      ++tokens;
    }
  }
  return total / static_cast<double>(tokens);
}

// Shifts the sampling log-probs away from the current ones so some ratios leave the clip range.
void shift_old_logprobs(model::Qwen2& model, rollout::Tree& tree, CreditRule rule) {
  const auto credit = assign_credit(tree, {rule, false});
  const PackedBatch packed = pack_tree(tree, credit, rule);
  const torch::Tensor now = model.tree_logprobs(packed.tree).detach();
  const float shifts[] = {0.0f, -0.3f, 0.3f, 0.25f};
  int64_t k = 0;
  for (auto& node : tree.nodes) {
    for (size_t t = 0; t < node.logprobs.size(); ++t, ++k)
      node.logprobs[t] = now[packed.prompt_tokens + k].item<float>() + shifts[k % 4];
  }
}

// Sampling log-prob of sample `answer`'s token t, read from the tree's node that holds it.
float old_logprob_on_path(const rollout::Tree& tree, const std::vector<int32_t>& answer, size_t t) {
  int32_t node = 0;
  size_t pos = 0;
  while (pos < answer.size()) {
    const auto& kids = tree.nodes[node].children;
    const auto next = std::find_if(kids.begin(), kids.end(), [&](int32_t c) {
      return !tree.nodes[c].token_ids.empty() && tree.nodes[c].token_ids[0] == answer[pos];
    });
    if (next == kids.end()) break;
    const rollout::Node& child = tree.nodes[*next];
    if (t < pos + child.token_ids.size()) return child.logprobs[t - pos];
    pos += child.token_ids.size();
    node = *next;
  }
  ADD_FAILURE() << "answer token " << t << " is not on a path of the tree";
  return 0.0f;
}

void expect_same_loss_and_gradients(model::Qwen2& model, const rollout::Tree& tree, CreditRule rule,
                                    const torch::Tensor& reference) {
  rollout::Tree scored = tree;
  const auto credit = assign_credit(scored, {rule, false});
  const PackedBatch packed = pack_tree(scored, credit, rule);
  LossOptions options; // the default clip range, 0.2 on both sides, as the references use
  options.agg = "group-token-mean";
  const LossResult result = policy_loss(model.tree_logprobs(packed.tree), packed, options);
  result.loss.backward();
  const auto packed_grads = take_gradients(model);
  EXPECT_GT(result.clip_fraction, 0.0);
  reference.backward();
  const auto reference_grads = take_gradients(model);
  EXPECT_NEAR(result.loss.item<double>(), reference.item<double>(), 1e-5);
  expect_same_gradients(packed_grads, reference_grads);
}

TEST(PackedGradient, TempoTrieEqualsPerSampleReferenceWithRepeatedSamples) {
  model::Qwen2 model = model::Qwen2::random(tiny_config(), 11, torch::kFloat32, torch::kCPU);
  rollout::Tree tree = testing::repeated_trie_tree();
  shift_old_logprobs(model, tree, CreditRule::Tempo);
  const std::vector<Sample> samples = {
      {{5, 3}, 1}, {{5, 3}, 1}, {{5, 3}, 1}, {{5, 4}, 0}, {{6}, 0}};
  // TEMPO from its definition over the sample list: A_it = R_i - mu + V(y_i[:t+1]) - V(y_i[:t]),
  // V(prefix) = mean reward of the samples that start with it.
  auto value = [&](const std::vector<int32_t>& answer, size_t length) {
    double sum = 0.0;
    int64_t count = 0;
    for (const Sample& s : samples) {
      if (s.answer.size() < length ||
          !std::equal(answer.begin(), answer.begin() + length, s.answer.begin()))
        continue;
      sum += s.reward;
      ++count;
    }
    return sum / static_cast<double>(count);
  };
  const double mu = value({}, 0);
  auto advantage = [&](size_t i, size_t t) {
    const Sample& s = samples[i];
    return s.reward - mu + value(s.answer, t + 1) - value(s.answer, t);
  };
  auto old = [&](size_t i, size_t t) { return old_logprob_on_path(tree, samples[i].answer, t); };
  const torch::Tensor reference =
      per_sample_reference_loss(model, tree.prompt_ids, samples, advantage, old, 0.2, 0.2);
  expect_same_loss_and_gradients(model, tree, CreditRule::Tempo, reference);
}

TEST(PackedGradient, TreePoTreeEqualsPerTrajectoryReference) {
  model::Qwen2 model = model::Qwen2::random(tiny_config(), 13, torch::kFloat32, torch::kCPU);
  rollout::Tree tree = testing::three_level_tree();
  shift_old_logprobs(model, tree, CreditRule::TreePo);
  // Root-to-leaf answers and their TreePO advantages (by hand in credit_test).
  const std::vector<Sample> samples = {{{10, 11, 30, 31}, 1}, {{10, 11, 50}, 0},
                                       {{10, 11, 40, 60}, 1}, {{10, 11, 40, 70}, 0},
                                       {{20, 80, 81, 90}, 0}, {{20, 80, 81, 100}, 0}};
  const double trajectory[] = {7.0 / 12, -5.0 / 12, 5.0 / 9, -4.0 / 9, -1.0 / 9, -1.0 / 9};
  auto advantage = [&](size_t i, size_t) { return trajectory[i]; };
  auto old = [&](size_t i, size_t t) { return old_logprob_on_path(tree, samples[i].answer, t); };
  const torch::Tensor reference =
      per_sample_reference_loss(model, tree.prompt_ids, samples, advantage, old, 0.2, 0.2);
  expect_same_loss_and_gradients(model, tree, CreditRule::TreePo, reference);
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
      const float sign = advantages[node.id].mean[t] < 0 ? -1.0f : 1.0f;
      node.logprobs[t] = now[packed.prompt_tokens + k].item<float>() + sign * shifts[k % 3];
    }
  }
  packed = pack_tree(tree, advantages, CreditRule::TreeRpo);

  int64_t forwarded = 0;
  const torch::Tensor reference =
      per_group_reference_loss(model, tree, advantages, 0.2, 0.2, forwarded);
  expect_same_loss_and_gradients(model, tree, CreditRule::TreeRpo, reference);

  // The reference forwarded what forward_cost says; the packed forward each unique token once.
  const ForwardCost cost = forward_cost(tree);
  EXPECT_EQ(forwarded, cost.per_group);
  EXPECT_EQ(cost.packed, packed.size());
}

} // namespace
} // namespace treerpo::rl
