// The paged KV cache: decode over blocks against the full forward and the packed tree forward
// (fp32 tolerance), block accounting derived by hand, forks at and inside block boundaries,
// release and reuse, preemption (swap) bit for bit, a short pool refused without side effects.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "tiny_model.h"
#include "treerpo/model/paged_kv_cache.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/util/error.h"

namespace treerpo::model {
namespace {

using testing::tiny_config;

constexpr double kTol = 1e-5;

Qwen2 tiny_model() {
  return Qwen2::random(tiny_config(false), 11, torch::kFloat32, torch::kCPU);
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

torch::Tensor last_logits(Qwen2& model, const std::vector<int32_t>& ids) {
  torch::NoGradGuard no_grad;
  return model.forward(ids)[static_cast<int64_t>(ids.size()) - 1];
}

TEST(PagedKvCache, DecodeEqualsFullForwardAtEveryStep) {
  Qwen2 model = tiny_model();
  const std::vector<int32_t> ids = {5, 17, 250, 3, 99, 42, 7, 7, 180, 64, 1, 299, 8, 13};
  torch::Tensor full;
  {
    torch::NoGradGuard no_grad;
    full = model.forward(ids);
  }
  PagedKvCache cache(model.config(), 8, 4, torch::kFloat32, torch::kCPU);
  torch::Tensor step = model.prefill(cache, {2}, {{ids.begin(), ids.begin() + 5}});
  EXPECT_TRUE(torch::allclose(step[0], full[4], kTol, kTol));
  EXPECT_EQ(cache.held_blocks(), 2); // 5 tokens in blocks of 4
  for (size_t t = 5; t < ids.size(); ++t) {
    step = model.decode(cache, {2}, {ids[t]});
    EXPECT_TRUE(torch::allclose(step[0], full[static_cast<int64_t>(t)], kTol, kTol)) << t;
  }
  EXPECT_EQ(cache.length(2), 14);
  EXPECT_EQ(cache.held_blocks(), 4); // ceil(14 / 4)
  EXPECT_EQ(cache.length(0), 0);
}

TEST(PagedKvCache, BatchOfDifferentLengthsEqualsSeparatePrompts) {
  Qwen2 model = tiny_model();
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 2, 3}, {9, 8, 7, 6, 5, 4, 3, 2, 1}, {100, 200, 50, 25, 12}};
  PagedKvCache cache(model.config(), 16, 4, torch::kFloat32, torch::kCPU);
  torch::Tensor batch = model.prefill(cache, {7, 0, 3}, prompts);
  for (size_t b = 0; b < prompts.size(); ++b) {
    EXPECT_TRUE(torch::allclose(batch[b], last_logits(model, prompts[b]), kTol, kTol)) << b;
  }
  EXPECT_EQ(cache.held_blocks(), 1 + 3 + 2);
  torch::Tensor next = model.decode(cache, {0, 3, 7}, {11, 12, 13});
  EXPECT_TRUE(torch::allclose(next[0], last_logits(model, concat(prompts[1], {11})), kTol, kTol));
  EXPECT_TRUE(torch::allclose(next[1], last_logits(model, concat(prompts[2], {12})), kTol, kTol));
  EXPECT_TRUE(torch::allclose(next[2], last_logits(model, concat(prompts[0], {13})), kTol, kTol));
}

// A fork shares every block. Of the holders of a shared partial block, the first to append
// writes in place (no other holder reads past its own length); each later one copies the block
// first. A full block is never copied.
TEST(PagedKvCache, ForkMidBlockCopiesThePartialBlockOnlyForLaterWriters) {
  Qwen2 model = tiny_model();
  const std::vector<int32_t> prefix = {10, 20, 30, 40, 50, 60}; // 1.5 blocks of 4
  PagedKvCache cache(model.config(), 8, 4, torch::kFloat32, torch::kCPU);
  model.prefill(cache, {0}, {prefix});
  cache.fork(0, 1);
  cache.fork(0, 2);
  EXPECT_EQ(cache.held_blocks(), 2);
  EXPECT_EQ(cache.ref_count(cache.table(0)[0]), 3);
  const int32_t partial = cache.table(0)[1];
  EXPECT_EQ(cache.fill(partial), 2);
  EXPECT_EQ(cache.blocks_to_append(1, 1), 0); // at the block's fill: appends in place
  EXPECT_EQ(cache.blocks_to_append(1, 3), 1); // ... and one new block for tokens 8 and 9
  torch::Tensor next = model.decode(cache, {0, 1, 2}, {1, 2, 3});
  // Sequence 0 wrote first and kept the block (fill 3); 1 and 2 each copied it: one full block
  // shared by all three, three partial blocks.
  EXPECT_EQ(cache.held_blocks(), 4);
  EXPECT_EQ(cache.table(0)[1], partial);
  EXPECT_EQ(cache.fill(partial), 3);
  EXPECT_EQ(cache.table(0)[0], cache.table(1)[0]);
  EXPECT_EQ(cache.table(1)[0], cache.table(2)[0]);
  EXPECT_NE(cache.table(0)[1], cache.table(1)[1]);
  EXPECT_NE(cache.table(1)[1], cache.table(2)[1]);
  for (int32_t b = 0; b < 3; ++b) {
    EXPECT_TRUE(torch::allclose(next[b], last_logits(model, concat(prefix, {b + 1})), kTol, kTol));
  }
  // The branches diverge independently afterwards.
  next = model.decode(cache, {2, 1}, {77, 78});
  EXPECT_TRUE(torch::allclose(next[0], last_logits(model, concat(prefix, {3, 77})), kTol, kTol));
  EXPECT_TRUE(torch::allclose(next[1], last_logits(model, concat(prefix, {2, 78})), kTol, kTol));
}

TEST(PagedKvCache, ForkAtABlockBoundaryTakesOnlyNewBlocks) {
  Qwen2 model = tiny_model();
  const std::vector<int32_t> prefix = {10, 20, 30, 40, 50, 60, 70, 80}; // exactly 2 blocks
  PagedKvCache cache(model.config(), 8, 4, torch::kFloat32, torch::kCPU);
  model.prefill(cache, {0}, {prefix});
  cache.fork(0, 5);
  EXPECT_EQ(cache.blocks_to_append(5, 1), 1);
  torch::Tensor next = model.decode(cache, {5, 0}, {4, 9});
  EXPECT_EQ(cache.held_blocks(), 4);
  EXPECT_EQ(cache.ref_count(cache.table(0)[1]), 2);
  EXPECT_TRUE(torch::allclose(next[0], last_logits(model, concat(prefix, {4})), kTol, kTol));
  EXPECT_TRUE(torch::allclose(next[1], last_logits(model, concat(prefix, {9})), kTol, kTol));
  // The parent leaves: the children's shared blocks stay, its own block returns.
  cache.release(0);
  EXPECT_EQ(cache.held_blocks(), 3);
  next = model.decode(cache, {5}, {6});
  EXPECT_TRUE(torch::allclose(next[0], last_logits(model, concat(prefix, {4, 6})), kTol, kTol));
}

TEST(PagedKvCache, ReleasedBlocksAreReusedAndForgetTheirTokens) {
  Qwen2 model = tiny_model();
  PagedKvCache cache(model.config(), 3, 4, torch::kFloat32, torch::kCPU);
  model.prefill(cache, {0}, {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}});
  EXPECT_EQ(cache.free_blocks(), 0);
  cache.release(0);
  EXPECT_EQ(cache.free_blocks(), 3);
  torch::Tensor out = model.prefill(cache, {4}, {{9, 10, 30, 31, 32}});
  EXPECT_TRUE(torch::allclose(out[0], last_logits(model, {9, 10, 30, 31, 32}), kTol, kTol));
  out = model.decode(cache, {4}, {33});
  EXPECT_TRUE(torch::allclose(out[0], last_logits(model, {9, 10, 30, 31, 32, 33}), kTol, kTol));
}

// A split point parked under the seed's coverage rule keeps its sequence: of its two children
// only the second to write copies the shared partial block (the first appends in place), so the
// split holds three blocks where copying for every writer would hold four.
TEST(PagedKvCache, AParkedParentAndTwoChildrenHoldOneCopyOfThePartialBlock) {
  Qwen2 model = tiny_model();
  const std::vector<int32_t> prefix = {10, 20, 30, 40, 50, 60};
  PagedKvCache cache(model.config(), 8, 4, torch::kFloat32, torch::kCPU);
  model.prefill(cache, {0}, {prefix});
  cache.fork(0, 1);
  cache.fork(0, 2); // sequence 0 stays parked
  torch::Tensor next = model.decode(cache, {1, 2}, {7, 8});
  EXPECT_EQ(cache.held_blocks(), 3);
  EXPECT_TRUE(torch::allclose(next[0], last_logits(model, concat(prefix, {7})), kTol, kTol));
  EXPECT_TRUE(torch::allclose(next[1], last_logits(model, concat(prefix, {8})), kTol, kTol));
  // The parked parent's later child (a coverage sibling) is behind the fill: it copies.
  cache.fork(0, 3);
  EXPECT_EQ(cache.blocks_to_append(3, 1), 1);
  next = model.decode(cache, {3, 1}, {9, 5});
  EXPECT_TRUE(torch::allclose(next[0], last_logits(model, concat(prefix, {9})), kTol, kTol));
  EXPECT_TRUE(torch::allclose(next[1], last_logits(model, concat(prefix, {7, 5})), kTol, kTol));
}

TEST(PagedKvCache, AShortPoolIsRefusedAndChangesNothing) {
  Qwen2 model = tiny_model();
  PagedKvCache cache(model.config(), 3, 4, torch::kFloat32, torch::kCPU);
  model.prefill(cache, {0}, {{1, 2, 3, 4, 5}});
  cache.fork(0, 1);
  cache.fork(0, 2);
  EXPECT_EQ(cache.free_blocks(), 1);
  // Sequence 0 appends in place; 1 and 2 each need a copy of the shared partial block: two
  // blocks, one is free.
  EXPECT_THROW(model.decode(cache, {0, 1, 2}, {6, 7, 8}), Error);
  EXPECT_EQ(cache.free_blocks(), 1);
  EXPECT_EQ(cache.length(0), 5);
  EXPECT_EQ(cache.length(1), 5);
  EXPECT_EQ(cache.fill(cache.table(0)[1]), 1);
  torch::Tensor out = model.decode(cache, {1, 2}, {7, 8});
  EXPECT_TRUE(torch::allclose(out[0], last_logits(model, {1, 2, 3, 4, 5, 7}), kTol, kTol));
  EXPECT_TRUE(torch::allclose(out[1], last_logits(model, {1, 2, 3, 4, 5, 8}), kTol, kTol));
}

TEST(PagedKvCache, SwapOutAndInContinuesBitForBit) {
  Qwen2 model = tiny_model();
  const std::vector<int32_t> prefix = {10, 20, 30, 40, 50, 60};
  PagedKvCache a(model.config(), 8, 4, torch::kFloat32, torch::kCPU);
  PagedKvCache b(model.config(), 8, 4, torch::kFloat32, torch::kCPU);
  for (PagedKvCache* c : {&a, &b}) {
    model.prefill(*c, {0}, {prefix});
    c->fork(0, 1);
    model.decode(*c, {0, 1}, {3, 4});
  }
  // In b, sequence 1 leaves the pool: only its own (partial) block goes to the host.
  b.swap_out(1);
  EXPECT_TRUE(b.swapped(1));
  EXPECT_EQ(b.blocks_to_swap_in(1), 1);
  EXPECT_EQ(b.held_blocks(), a.held_blocks() - 1);
  model.prefill(b, {2}, {{5, 6, 7, 8, 9}}); // reuses the freed block
  b.swap_in(1);
  torch::Tensor expected = model.decode(a, {1}, {99});
  torch::Tensor got = model.decode(b, {1}, {99});
  EXPECT_TRUE(torch::equal(expected, got));
}

// Decode over blocks gives the packed tree forward's log-probs: a prompt, two branches forked
// mid-block, one of them forked again at a block boundary.
TEST(PagedKvCache, DecodeLogprobsEqualThePackedTreeForward) {
  Qwen2 model = tiny_model();
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9};
  const std::vector<int32_t> a = {2, 6}, b = {5, 3, 5, 8}, c = {9, 7, 9};
  // Packed tree: prompt (0..5), a (6..7) under the prompt, b (8..11) under the prompt, c (12..14)
  // under b.
  PackedTree tree;
  tree.tokens = concat(concat(concat(prompt, a), b), c);
  tree.parent = {-1, 0, 1, 2, 3, 4, 5, 6, 5, 8, 9, 10, 11, 12, 13};
  torch::Tensor packed;
  {
    torch::NoGradGuard no_grad;
    packed = model.tree_logprobs(tree);
  }
  PagedKvCache cache(model.config(), 16, 4, torch::kFloat32, torch::kCPU);
  std::vector<float> paged(tree.tokens.size(), 0.0f);
  auto logprob = [](const torch::Tensor& logits, int32_t token) {
    return logits.log_softmax(-1)[token].item<float>();
  };
  torch::Tensor l = model.prefill(cache, {0}, {prompt});
  cache.fork(0, 1);
  // Branch a in seq 0, b in seq 1; each token's log-prob is read before it is fed.
  torch::Tensor la = l[0], lb = l[0];
  for (size_t i = 0; i < b.size(); ++i) {
    if (i < a.size()) paged[6 + i] = logprob(la, a[i]);
    paged[8 + i] = logprob(lb, b[i]);
    if (i < a.size()) {
      torch::Tensor out = model.decode(cache, {0, 1}, {a[i], b[i]});
      la = out[0], lb = out[1];
    } else {
      lb = model.decode(cache, {1}, {b[i]})[0];
    }
  }
  EXPECT_EQ(cache.length(1), 10);
  cache.fork(1, 2); // c hangs off b's last token; 10 tokens: block boundary at 8, mid-block
  torch::Tensor lc = lb;
  for (size_t i = 0; i < c.size(); ++i) {
    paged[12 + i] = logprob(lc, c[i]);
    lc = model.decode(cache, {2}, {c[i]})[0];
  }
  for (size_t i = 6; i < tree.tokens.size(); ++i) {
    EXPECT_NEAR(paged[i], packed[static_cast<int64_t>(i)].item<float>(), kTol) << i;
  }
}

} // namespace
} // namespace treerpo::model
