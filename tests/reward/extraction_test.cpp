// Finding the answer in a response and in a GSM8K gold solution.
#include <gtest/gtest.h>

#include <string>

#include "treerpo/reward/checker.h"

namespace treerpo::reward {
namespace {

TEST(ExtractAnswer, TakesTheContentOfTheBox) {
  EXPECT_EQ(extract_answer("so $\\boxed{42}$."), "42");
}

TEST(ExtractAnswer, MatchesNestedBraces) {
  EXPECT_EQ(extract_answer("\\boxed{\\frac{1}{2}}"), "\\frac{1}{2}");
  EXPECT_EQ(extract_answer("\\boxed{\\{1,\\{2\\}\\}}"), "\\{1,\\{2\\}\\}");
}

TEST(ExtractAnswer, LastBoxWins) {
  EXPECT_EQ(extract_answer("first \\boxed{1}, then \\boxed{2}."), "2");
  EXPECT_EQ(extract_answer("\\boxed{1} and finally \\fbox{3}"), "3");
}

TEST(ExtractAnswer, ReadsABoxWithoutBracesUpToTheDollar) {
  EXPECT_EQ(extract_answer("The answer is $\\boxed 5$."), "5");
  EXPECT_EQ(extract_answer("\\boxed 12\nmore text"), "12");
}

TEST(ExtractAnswer, AcceptsFboxAndFramebox) {
  EXPECT_EQ(extract_answer("\\fbox{7}"), "7");
  EXPECT_EQ(extract_answer("or $\\framebox{204}$ minutes"), "204");
}

TEST(ExtractAnswer, FindsNothingWithoutABox) {
  EXPECT_EQ(extract_answer("The answer is 5."), std::nullopt);
  EXPECT_EQ(extract_answer(""), std::nullopt);
}

TEST(ExtractAnswer, FindsNothingInABoxThatNeverCloses) {
  EXPECT_EQ(extract_answer("\\boxed{\\frac{1}{2}"), std::nullopt);
}

TEST(ExtractAnswer, IgnoresLongerCommandsStartingWithBox) {
  EXPECT_EQ(extract_answer("\\boxed{1} \\boxedanswer{2}"), "1");
  EXPECT_EQ(extract_answer("\\boxedx"), std::nullopt);
}

TEST(ExtractAnswer, KeepsAnEmptyBoxAsAnEmptyAnswer) {
  EXPECT_EQ(extract_answer("\\boxed{}"), "");
  EXPECT_FALSE(check("\\boxed{}", "0").correct);
}

TEST(ExtractAnswer, FallsBackToTheAnswerIsPhraseOnlyWhenAsked) {
  ExtractOptions fallback{true};
  EXPECT_EQ(extract_answer("So the answer is 18.", fallback), "18");
  EXPECT_EQ(extract_answer("The final answer is: $3$.\nThanks", fallback), "$3$");
  EXPECT_EQ(extract_answer("The answer is 18.", ExtractOptions{}), std::nullopt);
  // A box still wins over the phrase.
  EXPECT_EQ(extract_answer("The answer is 3, i.e. \\boxed{4}", fallback), "4");
}

TEST(Gsm8kGold, TakesTheTextAfterTheHashes) {
  EXPECT_EQ(gsm8k_gold("Step one.\nStep two.\n#### 18"), "18");
  EXPECT_EQ(gsm8k_gold("#### 1,080 "), "1,080");
  EXPECT_EQ(gsm8k_gold("no hashes"), std::nullopt);
  EXPECT_EQ(gsm8k_gold("#### "), std::nullopt);
}

} // namespace
} // namespace treerpo::reward
