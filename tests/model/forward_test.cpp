// The three forward paths against the full forward of each sequence (fp32 tolerance).
#include <cmath>
#include <map>

#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>

#include "tiny_decoder.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/util/error.h"

namespace treerpo::model {
namespace {

using testing::last_logits;
using testing::tiny_config;
using testing::tiny_model;

constexpr double kTol = 1e-5;

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(KvCacheDecode, EqualsFullForwardAtEveryStep) {
  Qwen2 model = tiny_model();
  const std::vector<int32_t> ids = {5, 17, 250, 3, 99, 42, 7, 7, 180, 64, 1, 299};
  torch::Tensor full;
  {
    torch::NoGradGuard no_grad;
    full = model.forward(ids);
  }
  KvCache cache(model.config(), 3, 32, torch::kFloat32, torch::kCPU);
  torch::Tensor step = model.prefill(cache, {1}, {{ids.begin(), ids.begin() + 5}});
  EXPECT_TRUE(torch::allclose(step[0], full[4], kTol, kTol));
  for (size_t t = 5; t < ids.size(); ++t) {
    step = model.decode(cache, {1}, {ids[t]});
    EXPECT_TRUE(torch::allclose(step[0], full[static_cast<int64_t>(t)], kTol, kTol)) << t;
  }
  EXPECT_EQ(cache.length(1), static_cast<int64_t>(ids.size()));
  EXPECT_EQ(cache.length(0), 0);
}

TEST(KvCachePrefill, BatchOfDifferentLengthsEqualsSeparatePrompts) {
  Qwen2 model = tiny_model();
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 2, 3}, {9, 8, 7, 6, 5, 4, 3}, {100, 200, 50, 25, 12}};
  KvCache cache(model.config(), 4, 16, torch::kFloat32, torch::kCPU);
  torch::Tensor batch = model.prefill(cache, {2, 0, 3}, prompts);
  ASSERT_EQ(batch.sizes(), (std::vector<int64_t>{3, 300}));
  for (size_t b = 0; b < prompts.size(); ++b) {
    EXPECT_TRUE(torch::allclose(batch[b], last_logits(model, prompts[b]), kTol, kTol)) << b;
  }
  // One batched decode step over slots of different lengths.
  torch::Tensor next = model.decode(cache, {0, 3, 2}, {11, 12, 13});
  EXPECT_TRUE(torch::allclose(next[0], last_logits(model, concat(prompts[1], {11})), kTol, kTol));
  EXPECT_TRUE(torch::allclose(next[1], last_logits(model, concat(prompts[2], {12})), kTol, kTol));
  EXPECT_TRUE(torch::allclose(next[2], last_logits(model, concat(prompts[0], {13})), kTol, kTol));
}

TEST(KvCachePrefill, AppendsToWhatTheSlotAlreadyHolds) {
  Qwen2 model = tiny_model();
  KvCache cache(model.config(), 2, 16, torch::kFloat32, torch::kCPU);
  model.prefill(cache, {0}, {{4, 5, 6}});
  torch::Tensor more = model.prefill(cache, {1, 0}, {{1, 2}, {7, 8, 9, 10}});
  EXPECT_TRUE(torch::allclose(more[1], last_logits(model, {4, 5, 6, 7, 8, 9, 10}), kTol, kTol));
  EXPECT_TRUE(torch::allclose(more[0], last_logits(model, {1, 2}), kTol, kTol));
}

TEST(KvCacheFork, ThenDecodeEqualsFreshPrefillOfThePrefix) {
  Qwen2 model = tiny_model();
  const std::vector<int32_t> prefix = {10, 20, 30, 40, 50, 60};
  KvCache cache(model.config(), 4, 16, torch::kFloat32, torch::kCPU);
  model.prefill(cache, {0}, {prefix});
  cache.fork(0, 3);
  EXPECT_EQ(cache.length(3), 6);
  torch::Tensor next = model.decode(cache, {0, 3}, {1, 2});
  EXPECT_TRUE(torch::allclose(next[0], last_logits(model, concat(prefix, {1})), kTol, kTol));
  EXPECT_TRUE(torch::allclose(next[1], last_logits(model, concat(prefix, {2})), kTol, kTol));
  // Branches diverge independently after the fork.
  next = model.decode(cache, {3}, {77});
  EXPECT_TRUE(torch::allclose(next[0], last_logits(model, concat(prefix, {2, 77})), kTol, kTol));
}

TEST(KvCacheRelease, ReusedSlotForgetsItsOldTokens) {
  Qwen2 model = tiny_model();
  KvCache cache(model.config(), 1, 16, torch::kFloat32, torch::kCPU);
  model.prefill(cache, {0}, {{1, 2, 3, 4, 5, 6, 7, 8}});
  cache.release(0);
  EXPECT_EQ(cache.length(0), 0);
  torch::Tensor out = model.prefill(cache, {0}, {{9, 10}});
  EXPECT_TRUE(torch::allclose(out[0], last_logits(model, {9, 10}), kTol, kTol));
}

TEST(KvCache, OverflowingASlotIsAnError) {
  Qwen2 model = tiny_model();
  KvCache cache(model.config(), 1, 4, torch::kFloat32, torch::kCPU);
  EXPECT_THROW(model.prefill(cache, {0}, {{1, 2, 3, 4, 5}}), Error);
}

// A tree with a shared prompt, branches placed apart from their parents, a branch off the middle of
// a span, and a deeper nested split:
//   prompt 0-3 ── a: 4-6 ── c: 10-11
//              │         └─ d: 12
//              ├─ b: 7-9
//              └─ (from token 5, mid-span of a) e: 13-14
PackedTree sample_tree() {
  PackedTree t;
  t.tokens = {3, 141, 59, 26, 5, 35, 89, 79, 32, 38, 46, 26, 43, 38, 32};
  t.parent = {-1, 0, 1, 2, 3, 4, 5, 3, 7, 8, 6, 10, 6, 5, 13};
  return t;
}

// For every token, the root-to-leaf path through it and its index on that path.
std::vector<std::vector<int32_t>> leaf_paths(const PackedTree& t,
                                             std::map<int32_t, std::pair<size_t, size_t>>& home) {
  const int32_t n = static_cast<int32_t>(t.tokens.size());
  std::vector<bool> has_child(n, false);
  for (int32_t p : t.parent) {
    if (p >= 0) has_child[p] = true;
  }
  std::vector<std::vector<int32_t>> paths;
  for (int32_t leaf = 0; leaf < n; ++leaf) {
    if (has_child[leaf]) continue;
    std::vector<int32_t> nodes;
    for (int32_t i = leaf; i >= 0; i = t.parent[i]) nodes.insert(nodes.begin(), i);
    for (size_t k = 0; k < nodes.size(); ++k)
      home.emplace(nodes[k], std::make_pair(paths.size(), k));
    paths.push_back(nodes);
  }
  return paths;
}

// log p(token | ancestors) of every tree token, computed by a full forward of each leaf path.
torch::Tensor per_path_logprobs(Qwen2& model, const PackedTree& t) {
  std::map<int32_t, std::pair<size_t, size_t>> home;
  auto paths = leaf_paths(t, home);
  std::vector<torch::Tensor> path_lp;
  for (const auto& nodes : paths) {
    std::vector<int32_t> ids;
    for (int32_t i : nodes) ids.push_back(t.tokens[i]);
    path_lp.push_back(torch::log_softmax(model.forward(ids), -1));
  }
  std::vector<torch::Tensor> out;
  for (int32_t i = 0; i < static_cast<int32_t>(t.tokens.size()); ++i) {
    auto [path, k] = home.at(i);
    out.push_back(k == 0 ? torch::zeros({}) : path_lp[path][k - 1][t.tokens[i]]);
  }
  return torch::stack(out);
}

TEST(TreeForward, LogprobsEqualPerPathComputation) {
  Qwen2 model = tiny_model();
  PackedTree tree = sample_tree();
  torch::Tensor packed = model.tree_logprobs(tree);
  ASSERT_EQ(packed.sizes(), (std::vector<int64_t>{15}));
  EXPECT_EQ(packed.scalar_type(), torch::kFloat32);
  EXPECT_EQ(packed[0].item<float>(), 0.0f);
  torch::Tensor reference = per_path_logprobs(model, tree);
  EXPECT_TRUE(torch::allclose(packed, reference, kTol, kTol)) << packed - reference;
}

TEST(TreeForward, GradientsEqualPerPathComputation) {
  Qwen2 model = tiny_model();
  PackedTree tree = sample_tree();
  // A per-token weighting, as advantages are, so every token's gradient path matters.
  torch::Tensor weights = torch::linspace(-1.0, 2.0, 15);
  auto params = model.parameters();
  auto packed = torch::autograd::grad({(model.tree_logprobs(tree) * weights).sum()}, params);
  auto reference =
      torch::autograd::grad({(per_path_logprobs(model, tree) * weights).sum()}, params);
  auto named = model.named_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(packed[i], reference[i], 1e-4, 1e-5)) << named[i].first;
  }
}

// Each level as one padded batch, and cut into a batch per segment (no padding allowed, context
// weighted: level 1's four segments run as four batches), checkpointed or not: the log-probs and
// every gradient equal the per-path computation's.
TEST(TreeForward, EveryLevelBatchingEqualsPerPathComputation) {
  PackedTree tree = sample_tree();
  torch::Tensor weights = torch::linspace(-1.0, 2.0, 15);
  Qwen2 reference_model = tiny_model();
  const torch::Tensor reference_lp = per_path_logprobs(reference_model, tree);
  const auto reference =
      torch::autograd::grad({(reference_lp * weights).sum()}, reference_model.parameters());
  for (const LevelBatching& batching : {LevelBatching::one_per_level(), LevelBatching{0.5, 0, 0}}) {
    ASSERT_EQ(level_batches(tree_segments(tree.parent), batching).size(),
              std::isinf(batching.slack) ? 2u : 5u);
    for (bool checkpointing : {false, true}) {
      Qwen2 model = tiny_model();
      model.set_level_batching(batching);
      model.set_gradient_checkpointing(checkpointing);
      torch::Tensor lp = model.tree_logprobs(tree);
      EXPECT_TRUE(torch::allclose(lp, reference_lp, kTol, kTol)) << lp - reference_lp;
      const auto grads = torch::autograd::grad({(lp * weights).sum()}, model.parameters());
      auto named = model.named_parameters();
      for (size_t i = 0; i < grads.size(); ++i) {
        EXPECT_TRUE(torch::allclose(grads[i], reference[i], 1e-4, 1e-5))
            << named[i].first << " slack " << batching.slack << " checkpointing " << checkpointing;
      }
    }
  }
}

TEST(TreeForward, DefaultBatchingIsTheShapes) {
  Qwen2 model = tiny_model();
  const Qwen2Config& c = model.config();
  EXPECT_DOUBLE_EQ(model.level_batching().context_weight,
                   2.0 * c.num_key_value_heads * c.head_dim() / c.hidden_size);
  model.set_level_batching(LevelBatching::one_per_level());
  EXPECT_TRUE(std::isinf(model.level_batching().slack));
}

TEST(TreeForward, ChainEqualsFullForward) {
  Qwen2 model = tiny_model();
  PackedTree chain{{8, 6, 4, 2, 0, 1}, {-1, 0, 1, 2, 3, 4}};
  torch::Tensor lp = model.tree_logprobs(chain);
  torch::NoGradGuard no_grad;
  torch::Tensor full = torch::log_softmax(model.forward(chain.tokens), -1);
  for (int64_t i = 1; i < 6; ++i) {
    EXPECT_NEAR(lp[i].item<double>(), full[i - 1][chain.tokens[i]].item<double>(), kTol);
  }
}

TEST(TreeForward, ForestOfSequencesEqualsSeparateForwards) {
  // Several roots in one pack (an SFT batch): no attention crosses between the sequences.
  Qwen2 model = tiny_model();
  PackedTree forest{{8, 6, 4, 2, 100, 101, 102}, {-1, 0, 1, 2, -1, 4, 5}};
  torch::Tensor lp = model.tree_logprobs(forest);
  torch::NoGradGuard no_grad;
  torch::Tensor first = torch::log_softmax(model.forward({8, 6, 4, 2}), -1);
  torch::Tensor second = torch::log_softmax(model.forward({100, 101, 102}), -1);
  EXPECT_EQ(lp[4].item<float>(), 0.0f);
  for (int64_t i = 1; i < 4; ++i) {
    EXPECT_NEAR(lp[i].item<double>(), first[i - 1][forest.tokens[i]].item<double>(), kTol);
  }
  for (int64_t i = 5; i < 7; ++i) {
    EXPECT_NEAR(lp[i].item<double>(), second[i - 5][forest.tokens[i]].item<double>(), kTol);
  }
}

} // namespace
} // namespace treerpo::model
