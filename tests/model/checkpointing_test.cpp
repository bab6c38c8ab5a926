// Gradient checkpointing of the packed tree forward: the same log-probs bit for bit, the same
// gradients to float32 rounding, one autograd node per layer and level, and the recompute under the
// forward's autocast state.
#include <string>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>

#include "tiny_model.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/util/autocast.h"

namespace treerpo::model {
namespace {

using testing::tiny_config;

// Four levels of segments (a node placed right after its parent's last token would extend the
// parent's segment, so the prompt's first child here branches off mid-prompt):
//   level 0: prompt 0-4
//   level 1: i 5-6 (from prompt token 2), a 7-10, b 11-12, c 13 (a single token)
//   level 2: j 23-24 (under i), d 14-16 and e 17 (under a), f 18-19 (under b)
//   level 3: g 20-21 and h 22 (under d)
// Segments of levels 1-3 differ in length, so those levels pad.
PackedTree branching_tree() {
  PackedTree t;
  t.parent = {-1, 0,  1,  2,  3,  2,  5,  4,  7,  8,  9, 4, 11,
              4,  10, 14, 15, 10, 12, 18, 16, 20, 16, 6, 23};
  t.tokens = {17,  250, 3,  99,  41, 7,   288, 130, 5,  64,  201, 12, 77,
              150, 9,   33, 180, 2,  260, 45,  111, 90, 199, 58,  222};
  return t;
}
constexpr int64_t kTreeLevels = 4;

Qwen2 tiny(bool tied, int64_t kv_heads = 2) {
  Qwen2Config c = tiny_config(tied);
  c.num_key_value_heads = kv_heads;
  return Qwen2::random(c, 23, torch::kFloat32, torch::kCPU);
}

// Fixed random per-token weights, as advantages are, so every token's gradient path matters.
torch::Tensor token_weights(int64_t n) {
  torch::manual_seed(5);
  return torch::randn({n});
}

std::vector<torch::Tensor> loss_gradients(Qwen2& model, bool checkpointing) {
  model.set_gradient_checkpointing(checkpointing);
  const PackedTree tree = branching_tree();
  torch::Tensor loss = (model.tree_logprobs(tree) * token_weights(25)).sum();
  return torch::autograd::grad({loss}, model.parameters());
}

void expect_gradients_close(Qwen2& model, const std::vector<torch::Tensor>& got,
                            const std::vector<torch::Tensor>& want, double rel) {
  const auto named = model.named_parameters();
  ASSERT_EQ(got.size(), named.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(got[i].defined()) << named[i].first;
    const double scale = std::max(1.0, want[i].abs().max().item<double>());
    EXPECT_LE((got[i] - want[i]).abs().max().item<double>(), rel * scale) << named[i].first;
  }
}

// Every node reachable from `out`'s grad_fn; `named` counts those whose name contains `part`.
size_t graph_nodes(const torch::Tensor& out, const std::string& part, size_t& named) {
  std::unordered_set<torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> stack{out.grad_fn().get()};
  named = 0;
  while (!stack.empty()) {
    torch::autograd::Node* node = stack.back();
    stack.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    if (node->name().find(part) != std::string::npos) ++named;
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return seen.size();
}

TEST(GradientCheckpointing, IsOffByDefaultAndToggles) {
  Qwen2 model = tiny(false);
  EXPECT_FALSE(model.gradient_checkpointing());
  model.set_gradient_checkpointing(true);
  EXPECT_TRUE(model.gradient_checkpointing());
  model.set_gradient_checkpointing(false);
  EXPECT_FALSE(model.gradient_checkpointing());
}

TEST(GradientCheckpointing, LogprobsAreBitwiseEqualOnAndOff) {
  Qwen2 model = tiny(false);
  const PackedTree tree = branching_tree();
  torch::Tensor off = model.tree_logprobs(tree);
  model.set_gradient_checkpointing(true);
  torch::Tensor on = model.tree_logprobs(tree);
  EXPECT_TRUE(torch::equal(on, off)) << on - off;
  EXPECT_TRUE(on.requires_grad());
}

TEST(GradientCheckpointing, GradientsOfEveryParameterEqualThePlainPath) {
  struct Shape {
    bool tied;
    int64_t kv_heads; // 2 of 4 heads: grouped-query attention; 4: one kv head per query head
  };
  for (const Shape s : {Shape{false, 2}, Shape{true, 2}, Shape{false, 4}, Shape{true, 1}}) {
    SCOPED_TRACE("tied " + std::to_string(s.tied) + ", kv heads " + std::to_string(s.kv_heads));
    Qwen2 model = tiny(s.tied, s.kv_heads);
    const auto plain = loss_gradients(model, false);
    const auto checkpointed = loss_gradients(model, true);
    expect_gradients_close(model, checkpointed, plain, 1e-5);
  }
}

TEST(GradientCheckpointing, EachLayerOfEachLevelIsOneAutogradNode) {
  Qwen2 model = tiny(false);
  const PackedTree tree = branching_tree();
  size_t plain_named = 0, checkpointed_named = 0;
  const size_t plain = graph_nodes(model.tree_logprobs(tree), "LayerCheckpoint", plain_named);
  model.set_gradient_checkpointing(true);
  const size_t checkpointed =
      graph_nodes(model.tree_logprobs(tree), "LayerCheckpoint", checkpointed_named);
  EXPECT_EQ(plain_named, 0u);
  EXPECT_EQ(checkpointed_named,
            static_cast<size_t>(kTreeLevels * model.config().num_hidden_layers));
  // A plain layer leaves its norms, projections, RoPE, attention and MLP in the graph (dozens of
  // nodes, each holding its activations); a checkpointed one leaves one node.
  EXPECT_LT(checkpointed * 2, plain) << "checkpointed " << checkpointed << ", plain " << plain;
}

TEST(GradientCheckpointing, RepeatedBackwardsAccumulateLikeThePlainPath) {
  // Training calls loss.backward() once per fresh forward; gradients land in .grad and add up.
  Qwen2 model = tiny(true);
  const PackedTree tree = branching_tree();
  const auto plain = loss_gradients(model, false);
  model.set_gradient_checkpointing(true);
  for (int step = 0; step < 2; ++step) {
    (model.tree_logprobs(tree) * token_weights(25)).sum().backward();
  }
  std::vector<torch::Tensor> accumulated, twice;
  for (const torch::Tensor& p : model.parameters()) {
    accumulated.push_back(p.grad().clone());
    p.mutable_grad().reset();
  }
  for (const torch::Tensor& g : plain) twice.push_back(2 * g);
  expect_gradients_close(model, accumulated, twice, 1e-5);
  // Switching back off afterwards leaves nothing behind.
  const auto again = loss_gradients(model, false);
  for (size_t i = 0; i < again.size(); ++i) EXPECT_TRUE(torch::equal(again[i], plain[i]));
}

TEST(GradientCheckpointing, SecondDerivativesAreRefused) {
  Qwen2 model = tiny(false);
  model.set_gradient_checkpointing(true);
  torch::Tensor loss = (model.tree_logprobs(branching_tree()) * token_weights(25)).sum();
  EXPECT_ANY_THROW(torch::autograd::grad({loss}, model.parameters(), {}, /*retain_graph=*/true,
                                         /*create_graph=*/true));
}

// Gradients of the weighted log-probs of `tree` with the forward under CPU bf16 autocast (a
// float32 model, as mixed-precision training runs), and the log-probs.
std::pair<torch::Tensor, std::vector<torch::Tensor>>
autocast_gradients(Qwen2& model, const PackedTree& tree, bool checkpointing) {
  model.set_gradient_checkpointing(checkpointing);
  torch::Tensor logprobs;
  {
    AutocastScope scope(at::kCPU, {true, at::kBFloat16});
    logprobs = model.tree_logprobs(tree);
  }
  const torch::Tensor weights = token_weights(static_cast<int64_t>(tree.tokens.size()));
  return {logprobs, torch::autograd::grad({(logprobs * weights).sum()}, model.parameters())};
}

TEST(GradientCheckpointing, RecomputeRunsUnderTheForwardsAutocast) {
  // One level: every weight is used once, so the same autocast in the recompute gives the plain
  // path's gradients to float32 rounding, where a float32 recompute would be off by bf16 rounding.
  Qwen2 model = tiny(false);
  const PackedTree chain{{17, 250, 3, 99, 41, 7, 288, 130}, {-1, 0, 1, 2, 3, 4, 5, 6}};
  const auto [plain_lp, plain] = autocast_gradients(model, chain, false);
  const auto [checkpointed_lp, checkpointed] = autocast_gradients(model, chain, true);
  EXPECT_TRUE(torch::equal(checkpointed_lp, plain_lp));
  expect_gradients_close(model, checkpointed, plain, 1e-5);
}

TEST(GradientCheckpointing, AutocastGradientsAgreeOnABranchingTree) {
  // Within bf16 rounding: over several levels the plain path sums a weight's per-level gradients
  // in bf16 (autocast casts the weight once per forward), the checkpointed one in float32.
  Qwen2 model = tiny(false);
  const PackedTree tree = branching_tree();
  const auto [plain_lp, plain] = autocast_gradients(model, tree, false);
  const auto [checkpointed_lp, checkpointed] = autocast_gradients(model, tree, true);
  EXPECT_TRUE(torch::equal(checkpointed_lp, plain_lp));
  const auto named = model.named_parameters();
  for (size_t i = 0; i < plain.size(); ++i) {
    const double scale = plain[i].abs().max().item<double>();
    EXPECT_LE((checkpointed[i] - plain[i]).abs().max().item<double>(), 2e-2 * scale)
        << named[i].first;
  }
}

} // namespace
} // namespace treerpo::model
