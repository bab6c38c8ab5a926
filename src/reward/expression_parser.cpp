// Recursive-descent parser for expression.h. Recursion is bounded by kMaxParseDepth and
// size by kMaxExpressionNodes, so any input - deep nesting, huge numbers, towers of powers - costs
// at most a few thousand steps; doubles turn overflow into inf instead of unbounded big-number
// work.
#include "expression.h"

#include <charconv>
#include <cmath>
#include <utility>

#include "bounds.h"
#include "text_scan.h"

namespace treerpo::reward {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kE = 2.71828182845904523536;

struct NamedFunction {
  std::string_view name;
  Function function;
};
constexpr NamedFunction kFunctions[] = {
    {"sin", Function::Sin},     {"cos", Function::Cos},     {"tan", Function::Tan},
    {"cot", Function::Cot},     {"sec", Function::Sec},     {"csc", Function::Csc},
    {"arcsin", Function::Asin}, {"arccos", Function::Acos}, {"arctan", Function::Atan},
    {"sinh", Function::Sinh},   {"cosh", Function::Cosh},   {"tanh", Function::Tanh},
    {"ln", Function::Ln},       {"exp", Function::Exp},     {"log", Function::Ln}};

constexpr std::string_view kGreek[] = {
    "alpha",    "beta",    "gamma", "delta",  "epsilon", "varepsilon", "zeta",  "eta",   "theta",
    "vartheta", "iota",    "kappa", "lambda", "mu",      "nu",         "xi",    "rho",   "sigma",
    "tau",      "upsilon", "phi",   "varphi", "chi",     "psi",        "omega", "Gamma", "Delta",
    "Theta",    "Lambda",  "Sigma", "Phi",    "Psi",     "Omega"};

Function function_named(std::string_view name) {
  for (const NamedFunction& f : kFunctions) {
    if (f.name == name) return f.function;
  }
  return Function::None;
}

bool is_greek(std::string_view name) {
  for (std::string_view g : kGreek) {
    if (g == name) return true;
  }
  return false;
}

class Parser {
public:
  explicit Parser(std::string_view text) : s_(text) {}

  std::optional<Expression> parse() {
    int root = sum();
    skip_spaces();
    if (root < 0 || pos_ != s_.size()) return std::nullopt;
    return std::move(e_);
  }

private:
  void skip_spaces() {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }
  bool eat(char c) {
    skip_spaces();
    if (pos_ < s_.size() && s_[pos_] == c) return ++pos_, true;
    return false;
  }
  // The command name at pos_ (without the backslash), or empty.
  std::string_view command() const {
    if (pos_ >= s_.size() || s_[pos_] != '\\') return {};
    std::size_t end = pos_ + 1;
    while (end < s_.size() && is_alpha(s_[end])) ++end;
    return s_.substr(pos_ + 1, end - pos_ - 1);
  }
  bool eat_command(std::string_view name) {
    skip_spaces();
    if (command() != name) return false;
    pos_ += name.size() + 1;
    return true;
  }

  int add(Expression::Node node) {
    if (node.lhs < 0 && (node.op != Op::Number && node.op != Op::Variable)) return -1;
    if ((node.op == Op::Add || node.op == Op::Sub || node.op == Op::Mul || node.op == Op::Div ||
         node.op == Op::Pow || node.op == Op::Root || node.op == Op::Binom || node.op == Op::Log) &&
        node.rhs < 0) {
      return -1;
    }
    if (e_.nodes.size() >= kMaxExpressionNodes) return -1;
    e_.nodes.push_back(node);
    return static_cast<int>(e_.nodes.size()) - 1;
  }
  int binary(Op op, int lhs, int rhs) { return add({op, Function::None, lhs, rhs}); }
  int number(double value) { return add({Op::Number, Function::None, -1, -1, value}); }

  // Depth guard for every recursive entry.
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) { ++p.depth_; }
    ~Nest() { --p.depth_; }
    bool too_deep() const { return p.depth_ > kMaxParseDepth; }
  };

  int sum() {
    Nest nest(*this);
    if (nest.too_deep()) return -1;
    int lhs = product();
    while (lhs >= 0) {
      if (eat('+')) {
        lhs = binary(Op::Add, lhs, product());
      } else if (eat('-')) {
        lhs = binary(Op::Sub, lhs, product());
      } else {
        break;
      }
    }
    return lhs;
  }

  int product() {
    int lhs = unary();
    while (lhs >= 0) {
      skip_spaces();
      if (s_.substr(pos_, 2) == "**") break;
      if (eat('*') || eat_command("cdot") || eat_command("times")) {
        lhs = binary(Op::Mul, lhs, unary());
      } else if (eat('/') || eat_command("div")) {
        lhs = binary(Op::Div, lhs, unary());
      } else if (starts_primary()) {
        lhs = binary(Op::Mul, lhs, power());
      } else {
        break;
      }
    }
    return lhs;
  }

  int unary() {
    Nest nest(*this);
    if (nest.too_deep()) return -1;
    if (eat('-')) return add({Op::Neg, Function::None, unary()});
    if (eat('+')) return unary();
    return power();
  }

  int power() {
    Nest nest(*this);
    if (nest.too_deep()) return -1;
    int base = postfix();
    skip_spaces();
    if (base < 0) return -1;
    if (s_.substr(pos_, 2) == "**") {
      pos_ += 2;
      return binary(Op::Pow, base, unary());
    }
    if (!eat('^')) return base;
    return binary(Op::Pow, base, exponent());
  }

  // After `^`: a braced group, a signed exponent, a digit run (plain-text `2^10` means 1024), or
  // one factor that may carry its own power (right associative).
  int exponent() {
    skip_spaces();
    if (pos_ < s_.size() && s_[pos_] == '{') return group('{', '}');
    if (eat('-')) return add({Op::Neg, Function::None, exponent()});
    if (eat('+')) return exponent();
    if (pos_ < s_.size() && is_digit(s_[pos_])) return literal();
    return power();
  }

  int postfix() {
    int value = primary();
    while (value >= 0 && eat('!')) value = add({Op::Factorial, Function::None, value});
    return value;
  }

  bool starts_primary() {
    skip_spaces();
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (is_digit(c) || is_alpha(c) || c == '(' || c == '{' || c == '.') return true;
    std::string_view name = command();
    return name == "frac" || name == "dfrac" || name == "tfrac" || name == "sqrt" || name == "pi" ||
           name == "infty" || name == "binom" || name == "lfloor" || name == "lceil" ||
           function_named(name) != Function::None || is_greek(name);
  }

  int group(char open, char close) {
    if (!eat(open)) return -1;
    int inner = sum();
    return inner >= 0 && eat(close) ? inner : -1;
  }

  int literal() {
    std::size_t start = pos_;
    while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    }
    // Scientific notation only when digits follow the `e`; a bare `2e` is 2 times Euler's number.
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      std::size_t exp = pos_ + 1;
      if (exp < s_.size() && (s_[exp] == '+' || s_[exp] == '-')) ++exp;
      if (exp < s_.size() && is_digit(s_[exp])) {
        pos_ = exp;
        while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
      }
    }
    double value = 0;
    auto [end, error] = std::from_chars(s_.data() + start, s_.data() + pos_, value);
    if (end != s_.data() + pos_) return -1;
    // A literal past double range has no usable value (and is not infinity).
    if (error == std::errc::result_out_of_range) value = NAN;
    return number(value);
  }

  int variable(std::string name) {
    skip_spaces();
    if (pos_ < s_.size() && s_[pos_] == '_') {
      std::size_t start = pos_++;
      if (pos_ < s_.size() && s_[pos_] == '{') {
        std::size_t close = matching_brace(s_, pos_);
        if (close == std::string_view::npos) return -1;
        pos_ = close + 1;
      } else if (pos_ < s_.size() && (is_alpha(s_[pos_]) || is_digit(s_[pos_]))) {
        ++pos_;
      } else {
        return -1;
      }
      name += s_.substr(start, pos_ - start);
    }
    if (name == "e") return number(kE);
    int index = -1;
    for (std::size_t i = 0; i < e_.variables.size(); ++i) {
      if (e_.variables[i] == name) index = static_cast<int>(i);
    }
    if (index < 0) {
      if (e_.variables.size() >= kMaxVariables) return -1;
      e_.variables.push_back(std::move(name));
      index = static_cast<int>(e_.variables.size()) - 1;
    }
    return add({Op::Variable, Function::None, -1, -1, 0, index});
  }

  // The argument of \frac, \sqrt, \binom: a braced group, or a single digit / letter / command.
  int argument() {
    skip_spaces();
    if (pos_ >= s_.size()) return -1;
    if (s_[pos_] == '{') return group('{', '}');
    if (is_digit(s_[pos_])) return number(s_[pos_++] - '0');
    if (is_alpha(s_[pos_])) return variable(std::string(1, s_[pos_++]));
    return primary();
  }

  // A function's argument: parenthesised, braced, or the next factor (`\sin x`, `\ln 2`).
  int function_argument() {
    skip_spaces();
    if (pos_ < s_.size() && s_[pos_] == '(') return group('(', ')');
    if (pos_ < s_.size() && s_[pos_] == '{') return group('{', '}');
    return power();
  }

  int function_call(Function function) {
    int exponent_node = -1;
    if (eat('^')) {
      exponent_node = exponent();
      if (exponent_node < 0) return -1;
    }
    int base = -1;
    if (function == Function::Ln && eat('_')) base = argument();
    int value = function_argument();
    if (value < 0) return -1;
    int call = base >= 0 ? binary(Op::Log, base, value) : add({Op::Function, function, value});
    return exponent_node >= 0 ? binary(Op::Pow, call, exponent_node) : call;
  }

  int command_primary() {
    std::string_view name = command();
    if (name.empty()) return -1;
    pos_ += name.size() + 1;
    if (name == "frac" || name == "dfrac" || name == "tfrac") {
      int numerator = argument();
      return binary(Op::Div, numerator, numerator >= 0 ? argument() : -1);
    }
    if (name == "binom") {
      int n = argument();
      return binary(Op::Binom, n, n >= 0 ? argument() : -1);
    }
    if (name == "sqrt") {
      int index = -1;
      if (eat('[')) {
        index = sum();
        if (index < 0 || !eat(']')) return -1;
      } else {
        index = number(2);
      }
      return binary(Op::Root, index, argument());
    }
    if (name == "pi") return number(kPi);
    if (name == "infty") return number(HUGE_VAL);
    if (name == "lfloor" || name == "lceil") {
      int inner = sum();
      bool floor = name == "lfloor";
      if (inner < 0 || !eat_command(floor ? "rfloor" : "rceil")) return -1;
      return add({Op::Function, floor ? Function::Floor : Function::Ceil, inner});
    }
    if (Function f = function_named(name); f != Function::None) return function_call(f);
    if (is_greek(name)) return variable("\\" + std::string(name));
    return -1;
  }

  int primary() {
    Nest nest(*this);
    if (nest.too_deep()) return -1;
    skip_spaces();
    if (pos_ >= s_.size()) return -1;
    char c = s_[pos_];
    if (is_digit(c) || c == '.') {
      std::size_t start = pos_;
      return mixed_number(start, literal());
    }
    if (c == '(') return group('(', ')');
    if (c == '[') return group('[', ']');
    if (c == '{') return group('{', '}');
    if (c == '|') {
      int inner = group('|', '|');
      return add({Op::Function, Function::Abs, inner});
    }
    if (c == '\\') return command_primary();
    if (is_alpha(c)) {
      // Plain-text function names (`sin(x)`, `log(2)`) before single-letter variables.
      // Names are at most 6 letters: looking further would make a long run of letters quadratic.
      std::size_t end = pos_;
      while (end < s_.size() && end - pos_ <= 6 && is_alpha(s_[end])) ++end;
      Function f = function_named(s_.substr(pos_, end - pos_));
      if (f != Function::None && end < s_.size() && s_[end] == '(') {
        pos_ = end;
        return function_call(f);
      }
      return variable(std::string(1, s_[pos_++]));
    }
    return -1;
  }

  // `2\frac{1}{2}` is the mixed number 2 1/2, not 2 times 1/2: an integer literal that starts a
  // term, directly followed by a fraction of two integer literals.
  int mixed_number(std::size_t start, int whole) {
    if (whole < 0 || std::floor(e_.nodes[whole].value) != e_.nodes[whole].value) return whole;
    std::size_t before = start;
    while (before > 0 && is_space(s_[before - 1])) --before;
    if (before > 0 && std::string_view("+-(,{[=").find(s_[before - 1]) == std::string_view::npos) {
      return whole;
    }
    std::string_view rest = s_.substr(pos_);
    if (!starts_with(rest, "\\frac{")) return whole;
    std::size_t i = 6;
    for (int part = 0; part < 2; ++part) {
      std::size_t digits = i;
      while (i < rest.size() && is_digit(rest[i])) ++i;
      if (i == digits || i >= rest.size() || rest[i] != '}') return whole;
      if (part == 0 && rest.substr(i, 2) != "}{") return whole;
      i += part == 0 ? 2 : 1;
    }
    return binary(Op::Add, whole, command_primary());
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  Expression e_;
};

} // namespace

std::optional<Expression> parse_expression(std::string_view text) {
  if (text.size() > kMaxAnswerChars) return std::nullopt;
  return Parser(text).parse();
}

} // namespace treerpo::reward
