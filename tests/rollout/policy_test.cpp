// Branching rules of each shape, on hand-made branch observations.
#include <gtest/gtest.h>

#include "treerpo/rollout/coverage.h"
#include "treerpo/rollout/policy.h"
#include "treerpo/util/error.h"

namespace treerpo::rollout {
namespace {

RolloutConfig treerpo_config() {
  RolloutConfig c;
  c.min_segment_tokens = 150;
  c.entropy_threshold = 1.0;
  c.max_depth = 7;
  return c;
}

TEST(TreeRpoPolicy, RootSplitsIntoTwoForcedDistinctChildren) {
  auto p = make_policy(treerpo_config());
  Decision d = p->at_root();
  EXPECT_EQ(d.children, 2);
  EXPECT_EQ(d.origin, NodeOrigin::Forced);
  EXPECT_TRUE(d.distinct);
}

TEST(TreeRpoPolicy, RootSplitsIntoTwoSampledChildrenWhenAsked) {
  RolloutConfig c = treerpo_config();
  c.first_split = "sampled";
  Decision d = make_policy(c)->at_root();
  EXPECT_EQ(d.children, 2);
  EXPECT_EQ(d.origin, NodeOrigin::Sample);
  EXPECT_FALSE(d.distinct);
}

TEST(TreeRpoPolicy, SplitsExactlyWhenAllFourGatesHold) {
  auto p = make_policy(treerpo_config());
  for (bool delim : {false, true}) {
    for (int64_t tokens : {149, 150}) {
      for (float entropy : {1.0f, 1.01f}) {
        for (int32_t depth : {6, 7}) {
          BranchView v{depth, tokens, delim, entropy, false, 1};
          const bool expected = delim && tokens >= 150 && entropy > 1.0f && depth < 7;
          Decision d = p->decide(v);
          EXPECT_EQ(d.children, expected ? 2 : 0) << delim << tokens << entropy << depth;
          if (expected) {
            EXPECT_EQ(d.origin, NodeOrigin::Entropy);
            EXPECT_TRUE(d.distinct);
          }
        }
      }
    }
  }
}

TEST(TreeRpoPolicy, CoverageSiblingsNeverSplit) {
  auto p = make_policy(treerpo_config());
  EXPECT_EQ(p->decide(BranchView{1, 500, true, 5.0f, true, 1}).children, 0);
}

TEST(SamplesPolicy, GrpoRootHasNIndependentSamplesAndNoLaterSplits) {
  RolloutConfig c;
  c.algorithm = "grpo";
  c.samples = 5;
  auto p = make_policy(c);
  EXPECT_EQ(p->at_root().children, 5);
  EXPECT_FALSE(p->at_root().distinct);
  EXPECT_EQ(p->decide(BranchView{1, 300, true, 9.0f, false, 5}).children, 0);
}

TEST(TreePoPolicy, ForksAtSegmentBoundariesWhileWidthAllows) {
  RolloutConfig c;
  c.algorithm = "treepo";
  c.segment_tokens = 4;
  c.branches = 3;
  c.max_width = 7;
  auto p = make_policy(c);
  EXPECT_EQ(p->at_root().children, 3);
  EXPECT_EQ(p->decide(BranchView{1, 4, false, 0.0f, false, 5}).children, 3); // 5 + 2 = 7
  EXPECT_EQ(p->decide(BranchView{1, 4, false, 0.0f, false, 6}).children, 0); // 6 + 2 > 7
  EXPECT_EQ(p->decide(BranchView{1, 3, false, 0.0f, false, 1}).children, 0);
  EXPECT_EQ(p->decide(BranchView{1, 8, false, 0.0f, false, 1}).children, 3);
}

TEST(FixedPolicy, NAryEverySegmentDownToDepthD) {
  RolloutConfig c;
  c.algorithm = "fixed";
  c.segment_tokens = 5;
  c.branches = 2;
  c.max_depth = 3;
  auto p = make_policy(c);
  EXPECT_EQ(p->at_root().children, 2);
  EXPECT_EQ(p->decide(BranchView{2, 5, false, 0.0f, false, 4}).children, 2);
  EXPECT_EQ(p->decide(BranchView{3, 5, false, 0.0f, false, 4}).children, 0);
  EXPECT_EQ(p->decide(BranchView{2, 4, false, 0.0f, false, 4}).children, 0);
}

TEST(Policy, UnknownAlgorithmIsBadInput) {
  RolloutConfig c;
  c.algorithm = "beam";
  EXPECT_THROW(make_policy(c), Error);
}

TEST(Coverage, DelimitersAndCharacters) {
  const std::vector<std::string> delims = {"\n", ".", ":"};
  EXPECT_TRUE(ends_with_delimiter("x = 3.", delims));
  EXPECT_TRUE(ends_with_delimiter(":\n", delims));
  EXPECT_FALSE(ends_with_delimiter("3.5", delims));
  EXPECT_FALSE(ends_with_delimiter("", delims));
  EXPECT_EQ(utf8_chars("a\xC3\xA9\xE2\x82\xAC"), 3); // a, e-acute, euro sign
}

TEST(Coverage, ReferenceCutIsTheLastDelimiterBeforeTheFinalMinChars) {
  // tokens: "ab." "cd." "efgh" "ij" -> ends 3 6 10 12
  const std::string text = "ab.cd.efghij";
  const std::vector<size_t> ends = {3, 6, 10, 12};
  EXPECT_EQ(reference_cut(text, ends, {"."}, 6, 0), std::optional<size_t>(2)); // 6 after "cd."
  EXPECT_EQ(reference_cut(text, ends, {"."}, 7, 0), std::optional<size_t>(1)); // 9 after "ab."
  EXPECT_EQ(reference_cut(text, ends, {"."}, 10, 0), std::nullopt);
}

TEST(Coverage, ReferenceCutLiesAtLeastMinTokensIntoTheLeaf) {
  const std::string text = "ab.cd.efghij";
  const std::vector<size_t> ends = {3, 6, 10, 12};
  EXPECT_EQ(reference_cut(text, ends, {"."}, 3, 2), std::optional<size_t>(2));
  // The only cut with 3 characters after it is j = 2 ("ab.cd."): with L_min 3 there is none.
  EXPECT_EQ(reference_cut(text, ends, {"."}, 3, 3), std::nullopt);
  // With 7 characters only j = 1 qualifies, which L_min 2 rules out.
  EXPECT_EQ(reference_cut(text, ends, {"."}, 7, 2), std::nullopt);
}

} // namespace
} // namespace treerpo::rollout
