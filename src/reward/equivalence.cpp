// answers_equal and check: the Qwen2.5-Math evaluation's math_equal (grader.py) without sympy -
// text equality after normalisation, numbers within a relative 1e-4, element-wise structures, and
// expressions compared by value at fixed points. Deviations from math_equal, each deliberate:
// - the percent rule (x = y, y/100 or 100y) applies only when either answer is written with a
// percent
//   sign or the word "percent"; math_equal applies it always, which rewards 1 for a gold answer of
//   100.
// - two integers written as plain digits are compared exactly, not within 1e-4 (1000001 !=
// 1000000).
// - intervals keep their brackets: (1,2] != (1,2); math_equal compares only the inner items.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bounds.h"
#include "expression.h"
#include "structure.h"
#include "text_scan.h"
#include "treerpo/reward/checker.h"

namespace treerpo::reward {
namespace {

constexpr double kNumberTolerance = 1e-4; // math_equal's isclose rel_tol
constexpr double kExpressionTolerance =
    1e-6; // for values at sample points, where no rounding happened
// Sample values for variables: irregular, positive (square roots and logarithms stay defined), and
// away from the zeros and poles of common trigonometric expressions.
constexpr double kSamplePoints[] = {0.5377, 1.8339, 2.2588, 0.8622, 1.3188,
                                    3.0349, 0.7254, 2.6715, 1.1476};
constexpr int kSampleCount = 7;
constexpr int kMinDefinedSamples = 3;

bool close(double a, double b, double tolerance) {
  if (a == b) return true;
  if (!std::isfinite(a) || !std::isfinite(b)) return false;
  return std::fabs(a - b) <= tolerance * std::max({std::fabs(a), std::fabs(b)});
}

bool is_integer_literal(std::string_view s) {
  if (!s.empty() && s.front() == '-') s.remove_prefix(1);
  if (s.empty() || s.size() > 15) return false;
  return std::all_of(s.begin(), s.end(), is_digit);
}

bool has_percent(std::string_view raw) {
  if (raw.find('%') != std::string_view::npos) return true;
  for (std::size_t i = raw.find("ercent"); i != std::string_view::npos;
       i = raw.find("ercent", i + 1)) {
    if (i > 0 && to_lower(raw[i - 1]) == 'p') return true;
  }
  return false;
}

// "B", "(B)", "B." -> 'B': a multiple-choice letter A-E.
char choice_letter(std::string_view s) {
  while (!s.empty() && (s.front() == '(' || s.front() == ' ')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ')' || s.back() == '.' || s.back() == ' ')) s.remove_suffix(1);
  return s.size() == 1 && s[0] >= 'A' && s[0] <= 'E' ? s[0] : 0;
}

bool numbers_equal(double a, double b, bool exact, bool percent) {
  if (exact) return a == b || (percent && (a == b * 100 || b == a * 100));
  if (close(a, b, kNumberTolerance)) return true;
  return percent && (close(a, b / 100, kNumberTolerance) || close(a, b * 100, kNumberTolerance));
}

// Values of both expressions at the sample points, variables matched by name. `sign` = -1 compares
// a with -b (equations may be written either way round).
bool values_agree(const Expression& a, const Expression& b, double sign) {
  std::vector<std::string> names = a.variables;
  for (const std::string& name : b.variables) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  if (names.size() > kMaxVariables) return false;
  auto values_for = [&](const Expression& e, int sample) {
    std::vector<double> values;
    for (const std::string& name : e.variables) {
      std::size_t index = std::find(names.begin(), names.end(), name) - names.begin();
      values.push_back(kSamplePoints[(sample * 2 + index * 5) % std::size(kSamplePoints)] +
                       0.1 * index);
    }
    return values;
  };
  if (names.empty()) {
    double x = evaluate(a, {}), y = sign * evaluate(b, {});
    return close(x, y, kNumberTolerance);
  }
  int defined = 0;
  for (int sample = 0; sample < kSampleCount; ++sample) {
    double x = evaluate(a, values_for(a, sample)), y = sign * evaluate(b, values_for(b, sample));
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    if (std::fabs(x - y) > kExpressionTolerance * std::max({1.0, std::fabs(x), std::fabs(y)}))
      return false;
    ++defined;
  }
  return defined >= kMinDefinedSamples;
}

bool expressions_equal(std::string_view p, std::string_view g, bool percent) {
  std::optional<Expression> a = parse_expression(p), b = parse_expression(g);
  if (!a || !b) return false;
  if (a->variables.empty() && b->variables.empty()) {
    double x = evaluate(*a, {}), y = evaluate(*b, {});
    return numbers_equal(x, y, is_integer_literal(p) && is_integer_literal(g), percent);
  }
  return values_agree(*a, *b, 1.0);
}

// `lhs=rhs` as the expression lhs-(rhs).
std::string as_difference(std::string_view equation) {
  std::size_t eq = equation.find('=');
  return "(" + std::string(equation.substr(0, eq)) + ")-(" + std::string(equation.substr(eq + 1)) +
         ")";
}

bool equations_equal(std::string_view p, std::string_view g) {
  std::optional<Expression> a = parse_expression(as_difference(p));
  std::optional<Expression> b = parse_expression(as_difference(g));
  if (!a || !b) return false;
  return values_agree(*a, *b, 1.0) || values_agree(*a, *b, -1.0);
}

bool equal_normalized(std::string_view p, std::string_view g, bool percent, int depth, int& budget);

bool items_equal(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b,
                 bool ordered, bool percent, int depth, int& budget) {
  if (a.size() != b.size()) return false;
  if (ordered) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!equal_normalized(a[i], b[i], percent, depth + 1, budget)) return false;
    }
    return true;
  }
  // Items written identically pair up first, so a permuted set spends the budget only on the rest.
  std::vector<bool> used(b.size(), false), done(a.size(), false);
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t j = 0; j < b.size() && !done[i]; ++j) {
      if (!used[j] && equal_ignoring_case(trim(a[i]), trim(b[j]))) used[j] = done[i] = true;
    }
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (done[i]) continue;
    std::string_view item = a[i];
    bool matched = false;
    for (std::size_t j = 0; j < b.size() && !matched; ++j) {
      if (!used[j] && equal_normalized(item, b[j], percent, depth + 1, budget))
        used[j] = matched = true;
    }
    if (!matched) return false;
  }
  return true;
}

bool structures_equal(const Structure& a, const Structure& b, bool percent, int depth,
                      int& budget) {
  // Sets and bare lists ("x = 1, 2" lists the solutions) are unordered; tuples and intervals are
  // not, and their brackets must agree - except that a bare list may match a parenthesised tuple.
  bool unordered = (a.is_set() || a.is_bare()) && (b.is_set() || b.is_bare());
  if (!unordered) {
    bool same_brackets = a.open == b.open && a.close == b.close;
    bool bare_vs_tuple = (a.is_bare() && b.open == '(' && b.close == ')') ||
                         (b.is_bare() && a.open == '(' && a.close == ')');
    if (!same_brackets && !bare_vs_tuple) return false;
  }
  return items_equal(a.items, b.items, !unordered, percent, depth, budget);
}

bool matrices_equal(std::string_view p, std::string_view g, bool percent, int depth, int& budget) {
  auto a = split_matrix(p), b = split_matrix(g);
  if (!a || !b || a->size() != b->size()) return false;
  for (std::size_t r = 0; r < a->size(); ++r) {
    if (!items_equal((*a)[r], (*b)[r], true, percent, depth, budget)) return false;
  }
  return true;
}

bool equal_normalized(std::string_view p, std::string_view g, bool percent, int depth,
                      int& budget) {
  p = trim(p);
  g = trim(g);
  if (p.empty() || g.empty()) return false;
  if (equal_ignoring_case(p, g)) return true;
  if (depth > kMaxStructureDepth || --budget < 0) return false;

  char letter_p = choice_letter(p), letter_g = choice_letter(g);
  if (letter_p && letter_g) return letter_p == letter_g;

  // `1\pm\sqrt{2}` is the pair of solutions 1+\sqrt{2}, 1-\sqrt{2}.
  for (bool gold_side : {false, true}) {
    std::string_view side = gold_side ? g : p;
    std::size_t pm = side.find("\\pm");
    if (pm == std::string_view::npos || side.find("\\pm", pm + 1) != std::string_view::npos ||
        side.find(',') != std::string_view::npos) {
      continue;
    }
    std::string head(side.substr(0, pm)), tail(side.substr(pm + 3));
    std::string both = head + "+" + tail + "," + head + "-" + tail;
    return gold_side ? equal_normalized(p, both, percent, depth + 1, budget)
                     : equal_normalized(both, g, percent, depth + 1, budget);
  }

  std::vector<std::string_view> union_p = split_top_level(p, "\\cup");
  std::vector<std::string_view> union_g = split_top_level(g, "\\cup");
  if (union_p.size() > 1 || union_g.size() > 1) {
    return union_p.size() <= kMaxElements &&
           items_equal(union_p, union_g, true, percent, depth, budget);
  }

  if (starts_with(p, "\\begin{pmatrix}") || starts_with(g, "\\begin{pmatrix}")) {
    return matrices_equal(p, g, percent, depth, budget);
  }

  std::optional<Structure> sp = split_structure(p), sg = split_structure(g);
  if (sp && sg) return structures_equal(*sp, *sg, percent, depth, budget);
  // {5} against 5: a one-element set written as a braced value.
  if (sp && sp->is_set() && sp->items.size() == 1)
    return equal_normalized(sp->items[0], g, percent, depth + 1, budget);
  if (sg && sg->is_set() && sg->items.size() == 1)
    return equal_normalized(p, sg->items[0], percent, depth + 1, budget);
  if (sp || sg) return false;

  std::size_t eq_p = std::count(p.begin(), p.end(), '='),
              eq_g = std::count(g.begin(), g.end(), '=');
  if (eq_p == 1 && eq_g == 1) return equations_equal(p, g);
  // `f(x)=2x` against `2x`: a named left side without digits is a label, not part of the answer.
  auto label_free = [](std::string_view equation) {
    std::string_view lhs = equation.substr(0, equation.find('='));
    return std::none_of(lhs.begin(), lhs.end(), is_digit) ? equation.substr(equation.find('=') + 1)
                                                          : std::string_view();
  };
  if (eq_p == 1 && eq_g == 0) return equal_normalized(label_free(p), g, percent, depth + 1, budget);
  if (eq_p == 0 && eq_g == 1) return equal_normalized(p, label_free(g), percent, depth + 1, budget);
  if (eq_p > 0 || eq_g > 0) return false;

  return expressions_equal(p, g, percent);
}

} // namespace

bool answers_equal(std::string_view predicted, std::string_view gold) {
  std::string_view p = trim(predicted), g = trim(gold);
  if (p.empty() || g.empty()) return false;
  if (equal_ignoring_case(p, g)) return true;
  if (p.size() > kMaxAnswerChars || g.size() > kMaxAnswerChars) return false;
  bool percent = has_percent(p) || has_percent(g);
  int budget = kMaxComparisons;
  return equal_normalized(normalize_answer(p), normalize_answer(g), percent, 0, budget);
}

Verdict check(std::string_view response, std::string_view gold, const ExtractOptions& options) {
  Verdict verdict;
  verdict.extracted = extract_answer(response, options);
  if (!verdict.extracted) return verdict;
  std::string gold_answer(gold);
  if (gold.find("####") != std::string_view::npos) gold_answer = gsm8k_gold(gold).value_or("");
  verdict.correct = answers_equal(*verdict.extracted, gold_answer);
  return verdict;
}

} // namespace treerpo::reward
