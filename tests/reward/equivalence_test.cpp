// The equivalence table: hand-written answer pairs with the verdict a careful human grader gives,
// each checked in both argument orders (answers_equal is symmetric in practice).
#include <gtest/gtest.h>

#include <string>

#include "treerpo/reward/checker.h"

namespace treerpo::reward {
namespace {

struct Case {
  const char* a;
  const char* b;
  bool equal;
};

// Equal pairs: the same value written two ways.
const Case kEqual[] = {
    // Fractions, decimals, leading zeros, trailing zeros.
    {"\\frac{1}{2}", "0.5", true},
    {"\\frac12", "\\frac{1}{2}", true},
    {"\\dfrac{3}{4}", "\\frac{3}{4}", true},
    {"\\tfrac{3}{4}", "0.75", true},
    {"3/4", "\\frac{3}{4}", true},
    {"-3/4", "-0.75", true},
    {"0.5", ".5", true},
    {"-.25", "-0.25", true},
    {"27.0", "27", true},
    {"3.00", "3", true},
    {"1.50", "1.5", true},
    {"\\frac{2}{4}", "\\frac{1}{2}", true},
    {"\\frac{1}{3}", "0.33333", true},
    {"\\frac{-1}{2}", "-\\frac{1}{2}", true},
    {"\\frac{1}{-2}", "-0.5", true},
    {"\\frac{\\frac{1}{2}}{2}", "\\frac{1}{4}", true},
    {"\\frac1{72}", "\\frac{1}{72}", true},
    // Mixed numbers.
    {"2\\frac{1}{2}", "2.5", true},
    {"2 1/2", "\\frac{5}{2}", true},
    {"-1\\frac{1}{4}", "-1.25", true},
    // Thousands separators, dollars, units.
    {"10,000", "10000", true},
    {"1,234,567", "1234567", true},
    {"1,000.5", "1000.5", true},
    {"10{,}000", "10000", true},
    {"10\\,000", "10000", true},
    {"\\$18", "18", true},
    {"$18$", "18", true},
    {"\\$1,000", "1000", true},
    {"18 dollars", "18", true},
    {"18\\text{ dollars}", "18", true},
    {"5\\text{ cm}^2", "5", true},
    {"12 \\mathrm{cm}", "12", true},
    {"5 square feet", "5", true},
    {"18 eggs", "18", true},
    {"30^\\circ", "30", true},
    {"30^{\\circ}", "30", true},
    {"45\xC2\xB0", "45", true},
    {"\\text{5}", "5", true},
    {"\\textbf{7}", "7", true},
    // Percent rule (applies because one side is written as a percent).
    {"50\\%", "0.5", true},
    {"50%", "50", true},
    {"50\\%", "50", true},
    {"12.5\\%", "0.125", true},
    {"25 percent", "0.25", true},
    // Scientific notation.
    {"4.5e33", "4.5\\times10^{33}", true},
    {"1.5 \\times 10^{3}", "1500", true},
    {"2\\cdot 10^{-3}", "0.002", true},
    {"1e-4", "0.0001", true},
    // Relative tolerance 1e-4.
    {"3.14159", "\\pi", true},
    {"0.33333", "\\frac{1}{3}", true},
    {"6.2832", "2\\pi", true},
    // Radicals and powers.
    {"\\sqrt{8}", "2\\sqrt{2}", true},
    {"\\sqrt8", "2\\sqrt{2}", true},
    {"\\sqrt{12}", "2\\sqrt3", true},
    {"\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", true},
    {"\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}", true},
    {"\\sqrt[3]{27}", "3", true},
    {"\\sqrt[3]{-8}", "-2", true},
    {"2^{10}", "1024", true},
    {"2^10", "1024", true},
    {"2**10", "1024", true},
    {"3^{-1}", "\\frac{1}{3}", true},
    {"4^{1/2}", "2", true},
    {"2^{1009}", "2^{1009}", true},
    {"e^{2}", "\\exp(2)", true},
    {"\\ln e", "1", true},
    {"\\log_{2} 8", "3", true},
    {"\\binom{5}{2}", "10", true},
    {"5!", "120", true},
    {"\\frac{100!}{2^{50}}", "\\frac{100!}{2^{50}}", true},
    {"|-3|", "3", true},
    {"\\lfloor 2.7 \\rfloor", "2", true},
    {"\\sin(\\frac{\\pi}{6})", "\\frac{1}{2}", true},
    {"\\cos 0", "1", true},
    {"\\left(\\frac{1}{2}\\right)^2", "\\frac14", true},
    // Expressions with variables.
    {"3x+2", "2+3x", true},
    {"x^2+2x+1", "(x+1)^2", true},
    {"2n-2", "2(n-1)", true},
    {"\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}", true},
    {"\\frac{1}{2n+2}", "\\frac{1}{2(n+1)}", true},
    {"ab", "ba", true},
    {"a_1+a_2", "a_2+a_1", true},
    {"\\sqrt{x^2}", "x", true},
    {"\\sin^2\\theta+\\cos^2\\theta", "1", true},
    {"2\\pi r", "2r\\pi", true},
    {"3 n", "3n", true},
    {"\\frac{3 m}{2}-1", "1.5m-1", true},
    {"-(n-1)/2", "\\frac{1-n}{2}", true},
    {"x^{2}", "x^2", true},
    {"\\sec^2 y", "\\tan^2 y+1", true},
    // Equations and labels.
    {"x=3", "3", true},
    {"x = 3", "3", true},
    {"k=5", "5", true},
    {"y=2x+1", "y=1+2x", true},
    {"y=2x+1", "2x+1", true},
    {"f(x)=2x", "2x", true},
    {"x+y=1", "1=x+y", true},
    {"M=\\frac{9}{32}\\sqrt{2}", "\\frac{9\\sqrt{2}}{32}", true},
    // Tuples, intervals, sets, lists.
    {"(1,2)", "(1, 2)", true},
    {"(1,4.5)", "(1,\\frac{9}{2})", true},
    {"[1,2)", "[1, 2)", true},
    {"(-\\infty, 3]", "(-\\infty,3]", true},
    {"(-\\infty,\\infty)", "\\mathbb{R}", true},
    {"\\{1,2,3\\}", "\\{3,2,1\\}", true},
    {"\\{1,2\\}", "{2,1}", true},
    {"1,2,3", "3,2,1", true},
    {"1, 3, 5", "1,3,5", true},
    {"x=1, 2", "2, 1", true},
    {"1 and 2", "1,2", true},
    {"\\pm 1", "\\{-1, 1\\}", true},
    {"1\\pm\\sqrt{2}", "1-\\sqrt2, 1+\\sqrt2", true},
    {"(1,2)", "1,2", true},
    {"(\\frac{1}{2}, \\sqrt{8})", "(0.5, 2\\sqrt{2})", true},
    {"(1,8,19), (2,7,13), (4,5,7)", "(2,7,13),(1,8,19),(4,5,7)", true},
    {"(-\\infty,1)\\cup(2,\\infty)", "(-\\infty, 1) \\cup (2, \\infty)", true},
    {"\\emptyset", "\\{\\}", true},
    {"\\{5\\}", "5", true},
    {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix}1 & 2\\\\ 3 & 4\\end{bmatrix}",
     true},
    {"\\begin{pmatrix}0.5\\\\1\\end{pmatrix}", "\\begin{pmatrix}\\frac12\\\\1\\end{pmatrix}", true},
    // Multiple choice and words.
    {"B", "(B)", true},
    {"\\text{(C)}", "C", true},
    {"five", "5", true},
    {"twenty-one", "21", true},
    {"one hundred and five", "105", true},
    {"Yes", "yes", true},
    {"\\text{east}", "east", true},
    {"8.", "8", true},
};

// Different pairs: close-looking answers a grader must reject.
const Case kDifferent[] = {
    {"(1,2]", "(1,2)", false},
    {"[1,2]", "(1,2)", false},
    {"[1,2)", "(1,2]", false},
    {"(1,2)", "(2,1)", false},
    {"(1,2)", "(1,2,3)", false},
    {"\\{1,2\\}", "\\{1,2,3\\}", false},
    {"1,2", "1,3", false},
    {"\\frac{1}{2}", "0.51", false},
    {"\\frac{1}{3}", "0.33", false},
    {"\\sqrt{8}", "2.83", false},
    {"\\sqrt{8}", "3\\sqrt{2}", false},
    {"3x+2", "3x-2", false},
    {"3x+2", "2x+3", false},
    {"2n", "2m", false},
    {"x^2", "x^3", false},
    {"x", "2", false},
    {"10,000", "1000", false},
    {"1000001", "1000000", false},
    {"18", "19", false},
    {"-18", "18", false},
    {"0", "1", false},
    {"0.5", "5", false},
    {"50", "0.5", false}, // percent rule needs a percent sign on either side
    {"1", "100", false},  // ... or GSM8K gold 100 would accept 1
    {"50\\%", "0.05", false},
    {"\\pi", "3.14", false},
    {"2^{10}", "1000", false},
    {"\\binom{5}{2}", "20", false},
    {"e^2", "7", false},
    {"y=2x+1", "y=2x-1", false},
    {"x=3", "4", false},
    {"2x=6", "6", false},
    {"A", "B", false},
    {"(A)", "C", false},
    {"five", "6", false},
    {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}", false},
    {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2&3&4\\end{pmatrix}", false},
    {"(-\\infty,1)\\cup(2,\\infty)", "(-\\infty,1]\\cup(2,\\infty)", false},
    {"\\infty", "-\\infty", false},
    {"\\infty", "100", false},
    {"", "5", false},
    {"5", "", false},
    {"x+a", "x", false},
    {"3m", "3", false},
    {"x m", "x", false},
    {"3 hundred", "3", false},
    {"2 dozen", "2", false},
    {"\\frac{1}{0}", "\\frac{1}{0}x", false},
    {"2\\frac{1}{2}", "1", false},
    {"\\{5\\}", "6", false},
    {"\\sqrt{-1}", "1", false},
    {"yes", "no", false},
    {"\\pm 1", "1", false},
    {"2\\pm 1", "1,2", false},
};

class AnswersEqualTable : public ::testing::TestWithParam<Case> {};

TEST_P(AnswersEqualTable, GivesTheSameVerdictInBothOrders) {
  const Case& c = GetParam();
  EXPECT_EQ(answers_equal(c.a, c.b), c.equal) << "'" << c.a << "' vs '" << c.b << "'";
  EXPECT_EQ(answers_equal(c.b, c.a), c.equal) << "'" << c.b << "' vs '" << c.a << "'";
}

INSTANTIATE_TEST_SUITE_P(EqualPairs, AnswersEqualTable, ::testing::ValuesIn(kEqual));
INSTANTIATE_TEST_SUITE_P(DifferentPairs, AnswersEqualTable, ::testing::ValuesIn(kDifferent));

TEST(AnswersEqualTable, HoldsAtLeast150HandWrittenCases) {
  EXPECT_GE(std::size(kEqual) + std::size(kDifferent), 150u);
}

TEST(Check, UsesTheNumberAfterHashesOfAGsm8kGold) {
  std::string gold = "She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18";
  EXPECT_TRUE(check("So the answer is \\boxed{18}.", gold).correct);
  EXPECT_FALSE(check("So the answer is \\boxed{9}.", gold).correct);
}

TEST(Check, AcceptsABareGoldAnswer) {
  Verdict v = check("... hence $\\boxed{\\frac{1}{2}}$.", "0.5");
  ASSERT_TRUE(v.extracted.has_value());
  EXPECT_EQ(*v.extracted, "\\frac{1}{2}");
  EXPECT_TRUE(v.correct);
}

TEST(Check, CountsAResponseWithoutABoxAsWrongByDefault) {
  Verdict v = check("The answer is 18.", "18");
  EXPECT_FALSE(v.extracted.has_value());
  EXPECT_FALSE(v.correct);
  EXPECT_TRUE(check("The answer is 18.", "18", ExtractOptions{true}).correct);
}

TEST(Check, TreatsAGsm8kGoldWithoutANumberAsUnanswerable) {
  EXPECT_FALSE(check("\\boxed{18}", "#### ").correct);
}

} // namespace
} // namespace treerpo::reward
