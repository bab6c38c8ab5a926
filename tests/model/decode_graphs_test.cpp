// Fixed-shape decode (model/decode_graphs.h) without capture, the path the CPU runs and the one a
// CUDA graph records: padded to batch buckets, block tables max_length wide, padding rows in the
// scratch block. It must give Qwen2::decode's logits (paged kernel) and write the same keys and
// values, with forks at and inside blocks, blocks reused after release, a batch that is not a
// bucket, and a short pool refused with nothing changed. The full forward is the reference.
#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "tiny_decoder.h"
#include "treerpo/model/decode_graphs.h"
#include "treerpo/model/paged_kv_cache.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/util/error.h"

namespace treerpo::model {
namespace {

using testing::last_logits;
using testing::tiny_config;
using testing::tiny_model;

// Buckets by hand: 1, 2, 4, 8, then multiples of 8.
TEST(DecodeGraphs, BatchesArePaddedToPowersOfTwoThenMultiplesOfEight) {
  const std::vector<std::pair<int64_t, int64_t>> expected = {
      {1, 1}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {8, 8}, {9, 16}, {16, 16}, {17, 24}, {250, 256}};
  for (const auto& [batch, bucket] : expected) {
    EXPECT_EQ(DecodeGraphs::bucket_for(batch), bucket) << batch;
  }
}

// The scratch block leaves the pool for good and is nobody's: not free, not held.
TEST(DecodeGraphs, TheScratchBlockIsNeitherFreeNorHeld) {
  Qwen2 model = tiny_model();
  PagedKvCache cache(model.config(), 8, 4, torch::kFloat32, torch::kCPU);
  DecodeGraphs fixed(model, cache, 4, 16, false);
  EXPECT_EQ(cache.free_blocks(), 7);
  EXPECT_EQ(cache.held_blocks(), 0);
  EXPECT_EQ(cache.scratch_block(), cache.scratch_block());
  EXPECT_EQ(fixed.graphs(), 0);
}

// Five branches off one prefix (6 tokens in blocks of 4: forks inside a block; bucket 8, three
// padding rows), one forked again at a block boundary (six: still bucket 8), decoded in fixed
// shapes on one cache and with Qwen2::decode on another; then a release and a reused block.
TEST(DecodeGraphs, FixedShapeStepsEqualPagedDecodeAndTheFullForward) {
  Qwen2 model = tiny_model();
  const std::vector<int32_t> prefix = {10, 20, 30, 40, 50, 60};
  PagedKvCache a(model.config(), 32, 4, torch::kFloat32, torch::kCPU);
  PagedKvCache b(model.config(), 32, 4, torch::kFloat32, torch::kCPU);
  DecodeGraphs fixed(model, a, 8, 40, false);
  for (PagedKvCache* c : {&a, &b}) {
    model.prefill(*c, {0}, {prefix});
    for (int64_t s = 1; s < 5; ++s) c->fork(0, s);
  }
  std::vector<std::vector<int32_t>> seqs(5, prefix);
  std::vector<int64_t> ids = {0, 1, 2, 3, 4};
  for (int32_t t = 0; t < 7; ++t) {
    if (t == 2) { // sequence 4 holds 8 tokens: a fork at a block boundary
      a.fork(4, 5);
      b.fork(4, 5);
      seqs.push_back(seqs[4]);
      ids.push_back(5);
    }
    std::vector<int32_t> tokens;
    for (size_t i = 0; i < ids.size(); ++i)
      tokens.push_back(static_cast<int32_t>(100 + 17 * i + t));
    const torch::Tensor x = fixed.decode(ids, tokens);
    const torch::Tensor y = model.decode(b, ids, tokens, DecodeAttention::PagedKernel);
    ASSERT_EQ(x.sizes(), y.sizes());
    EXPECT_TRUE(torch::allclose(x, y, 1e-5, 1e-5)) << "step " << t;
    for (size_t i = 0; i < ids.size(); ++i) {
      seqs[i].push_back(tokens[i]);
      EXPECT_TRUE(
          torch::allclose(x[static_cast<int64_t>(i)], last_logits(model, seqs[i]), 1e-5, 1e-5))
          << "step " << t << " seq " << i;
      EXPECT_EQ(a.length(ids[i]), b.length(ids[i]));
      // Block numbers differ (a's pool lent one to the scratch), table lengths do not.
      EXPECT_EQ(a.table(ids[i]).size(), b.table(ids[i]).size());
    }
  }
  // Every sequence's j-th block holds the same keys and values in both pools (up to its length),
  // within the 1e-5 of the logits: padding changes the GEMMs' row counts, and with two OpenMP
  // threads their split, so keys and values of about 3 differ by a few float32 ulps (up to 1.9e-6
  // seen) — the same step, not the same rounding.
  for (int64_t id : ids) {
    const int64_t length = a.length(id);
    for (size_t j = 0; j < a.table(id).size(); ++j) {
      const int32_t x = a.table(id)[j], y = b.table(id)[j];
      const int64_t rows = std::min<int64_t>(4, length - static_cast<int64_t>(j) * 4);
      for (size_t l = 0; l < a.keys.size(); ++l) {
        EXPECT_TRUE(torch::allclose(a.keys[l][x].narrow(0, 0, rows),
                                    b.keys[l][y].narrow(0, 0, rows), 1e-5, 1e-5));
        EXPECT_TRUE(torch::allclose(a.values[l][x].narrow(0, 0, rows),
                                    b.values[l][y].narrow(0, 0, rows), 1e-5, 1e-5));
      }
    }
  }
  // A released sequence's blocks go to a new one; one sequence alone is bucket 1.
  a.release(1);
  const std::vector<int32_t> other = {3, 1, 4, 1, 5, 9, 2, 6, 5};
  model.prefill(a, {7}, {{other.begin(), other.end() - 1}});
  const torch::Tensor reused = fixed.decode({7}, {other.back()});
  EXPECT_TRUE(torch::allclose(reused[0], last_logits(model, other), 1e-5, 1e-5));
}

// More sequences than planned, a sequence past max_length, and a pool too short for the step are
// refused, and the cache is as it was.
TEST(DecodeGraphs, StepsOutsideThePlanOrThePoolAreRefusedUnchanged) {
  Qwen2 model = tiny_model();
  PagedKvCache cache(model.config(), 6, 4, torch::kFloat32, torch::kCPU); // 5 after the scratch
  DecodeGraphs fixed(model, cache, 2, 9, false);
  model.prefill(cache, {0, 1}, {{1, 2, 3, 4}, {5, 6, 7, 8}}); // a full block each
  EXPECT_THROW(fixed.decode({0, 1, 2}, {1, 1, 1}), Error);
  for (int32_t t = 0; t < 5; ++t) fixed.decode({0}, {t + 1}); // 9 tokens: max_length
  EXPECT_THROW(fixed.decode({0}, {1}), Error);
  EXPECT_EQ(cache.length(0), 9);
  model.prefill(cache, {2}, {{1, 2, 3, 4}}); // the last free block
  EXPECT_EQ(cache.free_blocks(), 0);
  EXPECT_THROW(fixed.decode({1, 2}, {9, 9}), Error); // each needs a new block
  EXPECT_EQ(cache.length(1), 4);
  EXPECT_EQ(cache.length(2), 4);
  EXPECT_THROW(DecodeGraphs(model, cache, 2, 9, true), Error); // capture needs CUDA
}

} // namespace
} // namespace treerpo::model
