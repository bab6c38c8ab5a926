// Evaluation of a parsed expression in double precision. One forward pass over the nodes (children
// come first), so evaluation needs no recursion; overflow becomes inf and undefined points become
// NaN.
#include <cmath>
#include <vector>

#include "expression.h"

namespace treerpo::reward {
namespace {

double apply(Function f, double x) {
  switch (f) {
  case Function::Sin:
    return std::sin(x);
  case Function::Cos:
    return std::cos(x);
  case Function::Tan:
    return std::tan(x);
  case Function::Cot:
    return 1.0 / std::tan(x);
  case Function::Sec:
    return 1.0 / std::cos(x);
  case Function::Csc:
    return 1.0 / std::sin(x);
  case Function::Asin:
    return std::asin(x);
  case Function::Acos:
    return std::acos(x);
  case Function::Atan:
    return std::atan(x);
  case Function::Sinh:
    return std::sinh(x);
  case Function::Cosh:
    return std::cosh(x);
  case Function::Tanh:
    return std::tanh(x);
  case Function::Ln:
    return x > 0 ? std::log(x) : NAN;
  case Function::Exp:
    return std::exp(x);
  case Function::Abs:
    return std::fabs(x);
  case Function::Floor:
    return std::floor(x);
  case Function::Ceil:
    return std::ceil(x);
  case Function::None:
    break;
  }
  return NAN;
}

bool is_integer(double x) {
  return std::isfinite(x) && std::floor(x) == x;
}

double root(double index, double x) {
  if (index == 2) return x >= 0 ? std::sqrt(x) : NAN;
  if (x < 0 && is_integer(index) && std::fmod(index, 2.0) != 0) return -std::pow(-x, 1.0 / index);
  return x >= 0 && index != 0 ? std::pow(x, 1.0 / index) : NAN;
}

double binomial(double n, double k) {
  if (!is_integer(n) || !is_integer(k) || n < 0 || k < 0 || k > n) return k > n ? 0 : NAN;
  return std::round(std::exp(std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1)));
}

} // namespace

double evaluate(const Expression& expression, const std::vector<double>& variable_values) {
  std::vector<double> v(expression.nodes.size());
  for (std::size_t i = 0; i < expression.nodes.size(); ++i) {
    const Expression::Node& n = expression.nodes[i];
    double a = n.lhs >= 0 ? v[n.lhs] : 0, b = n.rhs >= 0 ? v[n.rhs] : 0;
    switch (n.op) {
    case Op::Number:
      v[i] = n.value;
      break;
    case Op::Variable:
      v[i] = variable_values[n.variable];
      break;
    case Op::Add:
      v[i] = a + b;
      break;
    case Op::Sub:
      v[i] = a - b;
      break;
    case Op::Mul:
      v[i] = a * b;
      break;
    case Op::Div:
      v[i] = a / b;
      break;
    case Op::Pow:
      v[i] = std::pow(a, b);
      break;
    case Op::Neg:
      v[i] = -a;
      break;
    case Op::Root:
      v[i] = root(a, b);
      break;
    case Op::Binom:
      v[i] = binomial(a, b);
      break;
    case Op::Factorial:
      v[i] = is_integer(a) && a >= 0 && a <= 170 ? std::tgamma(a + 1) : NAN;
      break;
    case Op::Log:
      v[i] = a > 0 && a != 1 && b > 0 ? std::log(b) / std::log(a) : NAN;
      break;
    case Op::Function:
      v[i] = apply(n.function, a);
      break;
    }
    // Overflow from finite operands (a tower of powers, 1/0) is a value doubles cannot hold, not
    // infinity: two different overflowing answers must not compare equal. Only \infty is infinite.
    bool finite_operands = (n.lhs < 0 || std::isfinite(a)) && (n.rhs < 0 || std::isfinite(b));
    if (n.op != Op::Number && std::isinf(v[i]) && finite_operands) v[i] = NAN;
  }
  return v.empty() ? NAN : v.back();
}

} // namespace treerpo::reward
