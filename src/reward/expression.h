#pragma once
// A small LaTeX / plain-text expression language for answers: numbers, variables, + - * /, implicit
// multiplication, powers, \frac, \sqrt, \binom, \pi, e, functions, |x|, floors and factorials.
// Parsed into a flat tree and evaluated in double precision, which is all equivalence needs: two
// answers are equal when they agree as numbers, or agree at several points when they have
// variables.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace treerpo::reward {

enum class Op : std::uint8_t {
  Number,
  Variable,
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Neg,
  Root,
  Binom,
  Factorial,
  Log,
  Function
};
enum class Function : std::uint8_t {
  None,
  Sin,
  Cos,
  Tan,
  Cot,
  Sec,
  Csc,
  Asin,
  Acos,
  Atan,
  Sinh,
  Cosh,
  Tanh,
  Ln,
  Exp,
  Abs,
  Floor,
  Ceil
};

struct Expression {
  // Children always precede their parent, so one forward pass evaluates the tree without recursion.
  struct Node {
    Op op = Op::Number;
    Function function = Function::None;
    int lhs = -1, rhs = -1; // operands; Root: lhs index, rhs radicand; Log: lhs base, rhs argument
    double value = 0;       // Number
    int variable = -1;      // Variable: index into `variables`
  };
  std::vector<Node> nodes;
  std::vector<std::string> variables; // names as written: "x", "a_1", "\theta"
};

// nullopt when the text is not one expression of this language, or is past the bounds in bounds.h.
std::optional<Expression> parse_expression(std::string_view text);

// The value with `variable_values[i]` for variable i; NaN where it is undefined.
double evaluate(const Expression& expression, const std::vector<double>& variable_values);

} // namespace treerpo::reward
