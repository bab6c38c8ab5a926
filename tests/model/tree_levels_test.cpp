// Cutting a packed tree into segments and each level into batches of similar length: segments and
// batches where the hand-worked examples put them, every segment in exactly one batch, levels in
// order, and no batch padded past the bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "treerpo/model/tree_levels.h"
#include "treerpo/util/rng.h"

namespace treerpo::model {
namespace {

std::vector<int64_t> firsts(const std::vector<TreeSegment>& s, const LevelBatch& b) {
  std::vector<int64_t> out;
  for (int64_t k : b.segments) out.push_back(s[static_cast<size_t>(k)].first);
  return out;
}

// The forward tests' tree: the prompt 0-3 runs on into a (4-6, parent 3 = the token before), so
// 0-6 is one segment; b 7-9 (under 3: depth 4), c 10-11 and d 12 (under 6: depth 7), e 13-14
// (under 5: depth 6) are level 1.
const std::vector<int32_t> kSampleParents = {-1, 0, 1, 2, 3, 4, 5, 3, 7, 8, 6, 10, 6, 5, 13};

TEST(TreeLevels, SegmentsAreMaximalRunsWithTheirDepthAndLevel) {
  const auto s = tree_segments(kSampleParents);
  ASSERT_EQ(s.size(), 5u);
  const std::vector<std::vector<int64_t>> expected = {
      {0, 7, 0, 0}, {7, 3, 4, 1}, {10, 2, 7, 1}, {12, 1, 7, 1}, {13, 2, 6, 1}};
  for (size_t k = 0; k < s.size(); ++k) {
    EXPECT_EQ((std::vector<int64_t>{s[k].first, s[k].length, s[k].depth, s[k].level}), expected[k])
        << k;
  }
  // A grandchild level: 15 under 12 (d) is level 2.
  std::vector<int32_t> deeper = kSampleParents;
  deeper.push_back(12);
  EXPECT_EQ(tree_segments(deeper).back().level, 2);
  EXPECT_TRUE(tree_segments({}).empty());
}

TEST(TreeLevels, OnePerLevelPadsEveryLevelToItsLongest) {
  const auto s = tree_segments(kSampleParents);
  const auto b = level_batches(s, LevelBatching::one_per_level());
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(firsts(s, b[0]), (std::vector<int64_t>{0}));
  EXPECT_EQ(firsts(s, b[1]), (std::vector<int64_t>{7, 10, 12, 13})); // token order
  EXPECT_EQ(b[1].span, 3);
  EXPECT_EQ(b[1].context, 7);
  EXPECT_EQ(b[1].tokens, 8);
  EXPECT_EQ(b[1].padded_rows(), 12);
}

// No padding allowed at all (slack 0, allowance 0). Context weight 0: only spans count, so c and e
// (two tokens each) share a batch; sorted longest first: b | c e | d. Context weight 1/2: c (depth
// 7) and e (depth 6) differ, so every segment runs alone: b | c | e | d.
TEST(TreeLevels, WithoutAllowanceOnlyEqualSegmentsShareABatch) {
  const auto s = tree_segments(kSampleParents);
  const auto spans_only = level_batches(s, {0, 0, 0});
  ASSERT_EQ(spans_only.size(), 4u);
  EXPECT_EQ(firsts(s, spans_only[1]), (std::vector<int64_t>{7}));
  EXPECT_EQ(firsts(s, spans_only[2]), (std::vector<int64_t>{10, 13}));
  EXPECT_EQ(spans_only[2].context, 7);
  EXPECT_EQ(firsts(s, spans_only[3]), (std::vector<int64_t>{12}));
  const auto weighted = level_batches(s, {0.5, 0, 0});
  ASSERT_EQ(weighted.size(), 5u);
  EXPECT_EQ(firsts(s, weighted[2]), (std::vector<int64_t>{10}));
  EXPECT_EQ(firsts(s, weighted[3]), (std::vector<int64_t>{13}));
}

// A 5-token prompt and four branches under its fourth token (depth 4, so the first branch does not
// run on from the prompt's last token), of 8, 100, 10 and 90 tokens; weight 1/2, slack 1/8,
// allowance 16. By hand, longest first: {100, 90} pads 2 x (100 + 2) = 204 against 190 + 4 = 194
// real: 10 <= max(24.25, 16), joins. Adding 10: 306 against 206, 100 > 25.75: a new batch.
// {10, 8}: 24 against 22, joins.
TEST(TreeLevels, ALevelIsCutWhereThePaddingBoundIsPassed) {
  std::vector<int32_t> parent = {-1, 0, 1, 2, 3};
  for (int length : {8, 100, 10, 90}) { // token order differs from length order
    parent.push_back(3);
    for (int t = 1; t < length; ++t) parent.push_back(static_cast<int32_t>(parent.size()) - 1);
  }
  const auto s = tree_segments(parent);
  ASSERT_EQ(s.size(), 5u);
  const auto b = level_batches(s, {0.5, 0.125, 16});
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[1].level, 1);
  EXPECT_EQ(firsts(s, b[1]), (std::vector<int64_t>{13, 123})); // the 100 and the 90, token order
  EXPECT_EQ(b[1].span, 100);
  EXPECT_EQ(b[1].tokens, 190);
  EXPECT_EQ(firsts(s, b[2]), (std::vector<int64_t>{5, 113})); // the 8 and the 10
  EXPECT_EQ(b[2].span, 10);
  EXPECT_EQ(b[2].context, 4);
  // With a large allowance the whole level is one batch again.
  EXPECT_EQ(level_batches(s, {0.5, 0.125, 1000}).size(), 2u);
}

TEST(TreeLevels, RandomTreesKeepEverySegmentOnceLevelsInOrderAndPaddingBounded) {
  SplitMix64 rng(5);
  const LevelBatching bound{0.3, 0.125, 64};
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<int32_t> parent;
    const auto n = static_cast<int64_t>(200 + rng.below(2000));
    for (int64_t i = 0; i < n; ++i) {
      // Mostly continue the run; sometimes branch from any earlier token.
      if (i == 0) {
        parent.push_back(-1);
      } else if (rng.below(20) != 0) {
        parent.push_back(static_cast<int32_t>(i - 1));
      } else {
        parent.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(i))));
      }
    }
    const auto s = tree_segments(parent);
    const auto batches = level_batches(s, bound);
    std::vector<int> seen(s.size(), 0);
    int64_t last_level = 0, tokens = 0;
    for (const LevelBatch& b : batches) {
      EXPECT_GE(b.level, last_level);
      last_level = b.level;
      EXPECT_TRUE(std::is_sorted(b.segments.begin(), b.segments.end()));
      double real = 0;
      int64_t span = 0, context = 0;
      for (int64_t k : b.segments) {
        const TreeSegment& seg = s[static_cast<size_t>(k)];
        ++seen[static_cast<size_t>(k)];
        EXPECT_EQ(seg.level, b.level);
        real += static_cast<double>(seg.length) + bound.context_weight * seg.depth;
        span = std::max(span, seg.length);
        context = std::max(context, seg.depth);
        tokens += seg.length;
      }
      EXPECT_EQ(b.span, span);
      EXPECT_EQ(b.context, context);
      const double padded = static_cast<double>(b.segments.size()) *
                            (static_cast<double>(span) + bound.context_weight * context);
      EXPECT_LE(padded - real, std::max(bound.slack * real, bound.allowance_rows) + 1e-9);
    }
    EXPECT_EQ(tokens, n);
    EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
  }
}

TEST(TreeLevels, ForShapeWeighsAContextPositionAsItsKeyAndValueRows) {
  // Qwen2.5-Math-1.5B: hidden 1,536, two KV heads of 128.
  EXPECT_DOUBLE_EQ(LevelBatching::for_shape(1536, 256).context_weight, 2.0 * 256 / 1536);
}

} // namespace
} // namespace treerpo::model
