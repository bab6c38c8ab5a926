// Hostile inputs still get a verdict: deep nesting, a million digits, towers of powers, unbalanced
// braces. (Their time is held to under a second each by the fuzzer's -timeout,
// scripts/fuzz.sh checker; the benchmark reports the per-check cost.)
#include <gtest/gtest.h>

#include <string>

#include "treerpo/reward/checker.h"

namespace treerpo::reward {
namespace {

std::string repeat(const std::string& piece, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += piece;
  return out;
}

TEST(BoundedWork, DeepNestingIsNotEqualToItsValue) {
  std::string nested = repeat("(", 100000) + "1" + repeat(")", 100000);
  EXPECT_FALSE(answers_equal(nested, "1"));
  EXPECT_TRUE(answers_equal(nested, nested));
  std::string fractions = repeat("\\frac{1}{", 5000) + "1" + repeat("}", 5000);
  EXPECT_FALSE(answers_equal(fractions, "2"));
}

TEST(BoundedWork, AMillionDigitsCompareAsText) {
  std::string huge(1000000, '9');
  EXPECT_FALSE(answers_equal(huge, huge + "9"));
  EXPECT_TRUE(answers_equal(huge, huge));
  EXPECT_EQ(extract_answer("\\boxed{" + huge + "}")->size(), huge.size());
}

TEST(BoundedWork, TowersOfPowersOverflowInsteadOfExpanding) {
  EXPECT_FALSE(answers_equal("9^{9^{9^{9^{9}}}}", "1"));
  EXPECT_FALSE(answers_equal("2^{2^{2^{2^{2^{2}}}}}", "2^{2^{2^{2^{2^{3}}}}}"));
  EXPECT_TRUE(answers_equal("2^{2^{2^{2}}}", "65536"));
  EXPECT_FALSE(answers_equal("1000000!", "1000001!"));
}

TEST(BoundedWork, UnbalancedBracesFindNoBox) {
  std::string open = "\\boxed{" + repeat("{", 100000);
  EXPECT_EQ(extract_answer(open), std::nullopt);
  EXPECT_FALSE(check(repeat("\\boxed{", 20000), "1").correct);
  EXPECT_FALSE(answers_equal(repeat("}", 1000) + repeat("{", 1000), "1"));
}

TEST(BoundedWork, LongListsCompareOnlyUpToTheElementBound) {
  std::string many = repeat("1,", 400) + "1";
  EXPECT_TRUE(answers_equal(many, many));
  EXPECT_FALSE(answers_equal(many, repeat("1,", 399) + "2"));
}

} // namespace
} // namespace treerpo::reward
