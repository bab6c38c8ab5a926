// normalize_answer's canonical forms (Qwen2.5-Math strip_string rules).
#include <gtest/gtest.h>

#include <string>

#include "treerpo/reward/checker.h"

namespace treerpo::reward {
namespace {

struct Form {
  const char* raw;
  const char* canonical;
};

const Form kForms[] = {
    {"  $\\frac{1}{2}$ ", "\\frac{1}{2}"},
    {"\\dfrac{1}{2}", "\\frac{1}{2}"},
    {"\\frac12", "\\frac{1}{2}"},
    {"3/4", "\\frac{3}{4}"},
    {"\\left( 1, 2 \\right)", "(1,2)"},
    {"\\leftarrow", "\\leftarrow"},
    {"10,000", "10000"},
    {"10\\!000", "10000"},
    {"\\$5.00", "5"},
    {"50\\%", "50"},
    {"x = 5", "5"},
    {"k=5", "5"},
    {"8.", "8"},
    {".5", "0.5"},
    {"(.5, .25)", "(0.5,0.25)"},
    {"2.000x", "2x"},
    {"3.05", "3.05"},
    {"\\text{(A)}", "(A)"},
    {"12\\text{ inches}", "12"},
    {"90^\\circ", "90"},
    {"\\sqrt2", "\\sqrt{2}"},
    {"2 \\pi r", "2\\pi r"},
    {"seven", "7"},
    {"1 and 2", "1,2"},
    {"\\{1, 2\\}", "{1,2}"},
    {"\\emptyset", "{}"},
    {"\\begin{bmatrix}1\\end{bmatrix}", "\\begin{pmatrix}1\\end{pmatrix}"},
    {"infinity", "\\infty"},
    {"\\begin{array}{cc}1&2\\end{array}", "\\begin{pmatrix}1&2\\end{pmatrix}"},
    {"x + a", "x+a"},
};

TEST(NormalizeAnswer, ProducesTheCanonicalForm) {
  for (const Form& f : kForms) EXPECT_EQ(normalize_answer(f.raw), f.canonical) << f.raw;
}

TEST(NormalizeAnswer, LeavesAnOverlongAnswerAsWritten) {
  std::string huge(5000, '1');
  huge += ".000";
  EXPECT_EQ(normalize_answer(huge), huge);
}

} // namespace
} // namespace treerpo::reward
