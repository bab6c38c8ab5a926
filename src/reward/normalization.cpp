// normalize_answer: the canonical text form of an answer, after the rules of the Qwen2.5-Math
// evaluation's strip_string (parser.py), written as linear scanners. Where that function has known
// slips (it deletes "and" so "1 and 2" becomes "12"; it strips single-letter unit words anywhere,
// so "x+a" loses its "a") this file keeps the intent and drops the slip; the differences are named
// where they happen.
#include <string>
#include <string_view>

#include "bounds.h"
#include "text_scan.h"
#include "treerpo/reward/checker.h"
#include "words.h"

namespace treerpo::reward {
namespace {

// `\text{...}`-like commands whose argument is plain text.
constexpr std::string_view kTextCommands[] = {"\\text",   "\\textbf", "\\textit", "\\textrm",
                                              "\\mathrm", "\\mathbf", "\\mbox",   "\\boxed"};

// `\!`, `\,`, `\;`, `\:`, `\ ` and `{,}` only adjust spacing (`10\,000`, `10{,}000`); a `\\` row
// break stays intact.
void remove_spacing_commands(std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char next = s[i + 1];
      if (next == '\\') {
        out += "\\\\";
        ++i;
        continue;
      }
      if (next == '!' || next == ',' || next == ';' || next == ':' || next == ' ') {
        ++i;
        continue;
      }
    }
    if (s.compare(i, 3, "{,}") == 0) {
      i += 2;
      continue;
    }
    out += s[i];
  }
  s = std::move(out);
}

// Drops every `command{...}` (keep_content = false) or replaces it by its content (true).
void rewrite_command(std::string& s, std::string_view command, bool keep_content) {
  std::size_t from = 0;
  for (std::size_t hit = s.find(command, from); hit != std::string::npos;
       hit = s.find(command, from)) {
    std::size_t open = hit + command.size();
    while (open < s.size() && s[open] == ' ') ++open;
    std::size_t close = open < s.size() && s[open] == '{' && command_at(s, hit, command)
                            ? matching_brace(s, open)
                            : std::string::npos;
    if (close == std::string::npos) {
      from = hit + command.size();
      continue;
    }
    std::string content = keep_content ? s.substr(open + 1, close - open - 1) : "";
    s.replace(hit, close + 1 - hit, content);
    from = hit;
  }
}

// `\begin{array}{cc}` -> `\begin{pmatrix}`: the column layout says nothing about the values.
void array_to_pmatrix(std::string& s) {
  constexpr std::string_view kArray = "\\begin{array}";
  for (std::size_t hit = s.find(kArray); hit != std::string::npos; hit = s.find(kArray, hit + 1)) {
    std::size_t layout = hit + kArray.size();
    std::size_t close =
        layout < s.size() && s[layout] == '{' ? matching_brace(s, layout) : layout - 1;
    if (close == std::string::npos) close = layout - 1;
    s.replace(hit, close + 1 - hit, "\\begin{pmatrix}");
  }
}

void remove_command(std::string& s, std::string_view command) {
  std::size_t from = 0;
  for (std::size_t hit = s.find(command, from); hit != std::string::npos;
       hit = s.find(command, from)) {
    if (command_at(s, hit, command)) {
      s.erase(hit, command.size());
      from = hit;
    } else {
      from = hit + command.size();
    }
  }
}

// "5\text{ cm}^2" -> "5": a trailing text command is a unit when something is left in front of it.
void drop_trailing_text_unit(std::string& s) {
  std::string_view view = trim(s);
  // A unit may carry a power: \text{cm}^2, \mathrm{m}^{3}.
  std::size_t end = view.size();
  if (end >= 2 && is_digit(view[end - 1]) && view[end - 2] == '^') end -= 2;
  if (ends_with(view.substr(0, end), "}") && end >= 4 && view.substr(end - 4, 4) == "^{2}")
    end -= 4;
  if (end == 0 || view[end - 1] != '}') return;
  for (std::string_view command : kTextCommands) {
    if (command == "\\boxed") continue;
    std::size_t hit = view.rfind(command, end);
    if (hit == std::string_view::npos || !command_at(view, hit, command)) continue;
    std::size_t open = hit + command.size();
    while (open < view.size() && view[open] == ' ') ++open;
    if (open >= view.size() || view[open] != '{' || matching_brace(view, open) != end - 1) continue;
    std::string_view rest = trim(view.substr(0, hit));
    if (rest.empty()) return;
    s = std::string(rest);
    return;
  }
}

// Removes spaces, keeping one where a command would otherwise run into a letter (`\pi r` stays
// apart).
void remove_spaces(std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != ' ') {
      out += s[i];
      continue;
    }
    std::size_t next = i;
    while (next < s.size() && s[next] == ' ') ++next;
    std::size_t back = out.size();
    while (back > 0 && is_alpha(out[back - 1])) --back;
    bool after_command = back < out.size() && back > 0 && out[back - 1] == '\\';
    if (after_command && next < s.size() && is_alpha(s[next])) out += ' ';
    i = next - 1;
  }
  s = std::move(out);
}

// "1,234,567.5" -> "1234567.5": a whole answer in thousands groups is one number.
void drop_thousands_separators(std::string& s) {
  std::size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  std::size_t lead = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i == lead || i - lead > 3 || i >= s.size() || s[i] != ',') return;
  while (i < s.size() && s[i] == ',') {
    for (int k = 1; k <= 3; ++k) {
      if (i + k >= s.size() || !is_digit(s[i + k])) return;
    }
    i += 4;
  }
  if (i < s.size() && s[i] == '.') {
    std::size_t frac = ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == frac) return;
  }
  if (i != s.size()) return;
  std::string out;
  for (char c : s) {
    if (c != ',') out += c;
  }
  s = std::move(out);
}

// ".5" -> "0.5" wherever a decimal point starts a number; "3.00" -> "3", "2.0x" -> "2x".
void canonical_decimals(std::string& s) {
  std::string out;
  out.reserve(s.size() + 4);
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.' && i + 1 < s.size() && is_digit(s[i + 1]) &&
        (out.empty() || !is_digit(out.back()))) {
      out += '0';
    }
    if (c == '.' && !out.empty() && is_digit(out.back())) {
      std::size_t j = i + 1;
      while (j < s.size() && s[j] == '0') ++j;
      if (j >= s.size() || !is_digit(s[j])) {
        i = j - 1;
        continue;
      }
    }
    out += c;
  }
  s = std::move(out);
}

// `x=`, `y=`, `z=`, `x\in` ... at the start of the answer or of a list item.
void drop_variable_prefixes(std::string& s) {
  constexpr std::string_view kPrefixes[] = {"x=",    "y=",    "z=",    "x\\in", "y\\in",
                                            "z\\in", "x\\to", "y\\to", "z\\to"};
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    bool item_start = i == 0 || s[i - 1] == ',';
    bool dropped = false;
    for (std::string_view prefix : kPrefixes) {
      if (item_start && std::string_view(s).substr(i, prefix.size()) == prefix) {
        i += prefix.size();
        dropped = true;
        break;
      }
    }
    if (!dropped) out += s[i++];
  }
  s = std::move(out);
}

// "k=5" -> "5": strip_string's rule for a single `=` with a left side of at most two characters,
// kept to left sides without digits, so "2x=6" and "1=x+y" stay equations.
void drop_short_equation_lhs(std::string& s) {
  std::size_t eq = s.find('=');
  if (eq == std::string::npos || eq > 2 || s.find('=', eq + 1) != std::string::npos) return;
  for (std::size_t i = 0; i < eq; ++i) {
    if (is_digit(s[i])) return;
  }
  if (eq + 1 < s.size()) s.erase(0, eq + 1);
}

// `\sqrt2` -> `\sqrt{2}`, `\sqrt x` -> `\sqrt{x}`.
void brace_sqrt_arguments(std::string& s) {
  for (std::size_t hit = s.find("\\sqrt"); hit != std::string::npos;
       hit = s.find("\\sqrt", hit + 5)) {
    std::size_t arg = hit + 5;
    if (arg < s.size() && s[arg] == ' ') ++arg;
    std::size_t end = arg;
    while (end < s.size() && is_digit(s[end])) ++end;
    if (end == arg && arg < s.size() && is_alpha(s[arg]) && arg > hit + 5) end = arg + 1;
    if (end == arg) continue;
    s.replace(hit + 5, end - (hit + 5), "{" + s.substr(arg, end - arg) + "}");
  }
}

// `\frac12` -> `\frac{1}{2}`, `\frac1{72}` -> `\frac{1}{72}`: one-character arguments get braces.
void brace_frac_arguments(std::string& s) {
  for (std::size_t hit = s.find("\\frac"); hit != std::string::npos;
       hit = s.find("\\frac", hit + 5)) {
    std::size_t pos = hit + 5;
    for (int arg = 0; arg < 2 && pos < s.size(); ++arg) {
      if (s[pos] == '{') {
        std::size_t close = matching_brace(s, pos);
        if (close == std::string::npos) break;
        pos = close + 1;
      } else if (is_digit(s[pos]) || is_alpha(s[pos])) {
        s.insert(pos + 1, "}");
        s.insert(pos, "{");
        pos += 3;
      } else {
        break;
      }
    }
  }
}

bool is_integer_text(std::string_view s) {
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// "3/4" -> "\frac{3}{4}" when the whole answer is one integer over another.
void slash_to_frac(std::string& s) {
  std::size_t slash = s.find('/');
  if (slash == std::string::npos || s.find('/', slash + 1) != std::string::npos) return;
  std::string a = s.substr(0, slash), b = s.substr(slash + 1);
  if (is_integer_text(a) && is_integer_text(b)) s = "\\frac{" + a + "}{" + b + "}";
}

// "2 1/2" -> "2\frac{1}{2}": a whole answer written as a mixed number in plain text.
void mixed_number_to_frac(std::string& s) {
  std::size_t space = s.find(' ');
  if (space == std::string::npos || !is_integer_text(s.substr(0, space))) return;
  std::string rest(trim(std::string_view(s).substr(space)));
  std::size_t slash = rest.find('/');
  if (slash == std::string::npos) return;
  std::string a = rest.substr(0, slash), b = rest.substr(slash + 1);
  if (is_integer_text(a) && is_integer_text(b) && a[0] != '-' && b[0] != '-') {
    s = s.substr(0, space) + "\\frac{" + a + "}{" + b + "}";
  }
}

void strip_trailing_periods(std::string& s) {
  while (!s.empty() && (s.back() == '.' || is_space(s.back()))) s.pop_back();
}

} // namespace

std::string normalize_answer(std::string_view answer) {
  std::string s(trim(answer));
  if (s.size() > kMaxAnswerChars) return s;
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t' || c == '~') c = ' ';
  }
  strip_trailing_periods(s);
  remove_spacing_commands(s);
  remove_command(s, "\\displaystyle");
  array_to_pmatrix(s);
  replace_all(s, "\\end{array}", "\\end{pmatrix}");
  replace_all(s, "bmatrix", "pmatrix");
  for (std::string_view frac : {"\\tfrac", "\\dfrac", "\\cfrac"}) replace_all(s, frac, "\\frac");
  replace_all(s, "\\neq", "\\ne");
  replace_all(s, "\\leq", "\\le");
  replace_all(s, "\\geq", "\\ge");
  remove_command(s, "\\left");
  remove_command(s, "\\right");
  replace_all(s, "\\{", "{");
  replace_all(s, "\\}", "}");
  drop_trailing_text_unit(s);
  for (std::string_view degree : {"^{\\circ}", "^\\circ", "\xC2\xB0"}) replace_all(s, degree, "");
  for (std::string_view dollar : {"\\$", "$", "\\(", "\\)", "\\[", "\\]"})
    replace_all(s, dollar, "");
  for (std::string_view command : kTextCommands) rewrite_command(s, command, true);
  s = std::string(trim(s));
  words_to_number(s);
  drop_trailing_unit_words(s);
  mixed_number_to_frac(s);
  and_to_comma(s);
  for (std::string_view percent : {"\\%", "%"}) replace_all(s, percent, "");
  remove_spaces(s);
  drop_thousands_separators(s);
  drop_variable_prefixes(s);
  replace_all(s, "\\emptyset", "{}");
  replace_all(s, "\\varnothing", "{}");
  replace_all(s, "(-\\infty,\\infty)", "\\mathbb{R}");
  replace_all(s, "infinity", "\\infty");
  if (s == "inf" || s == "-inf") replace_all(s, "inf", "\\infty");
  canonical_decimals(s);
  drop_short_equation_lhs(s);
  brace_sqrt_arguments(s);
  brace_frac_arguments(s);
  slash_to_frac(s);
  strip_trailing_periods(s);
  return s;
}

} // namespace treerpo::reward
