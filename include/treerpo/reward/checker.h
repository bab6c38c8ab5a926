#pragma once
// The math-answer checker: pull the final answer out of a response, normalise it, and decide
// whether it equals the gold answer. Follows the rules of the Qwen2.5-Math evaluation (strip_string
// / math_equal), but exact and bounded: every call does a bounded amount of work on any input,
// needs no signals or timers, and is a pure function (safe to call from many threads at once).
#include <optional>
#include <string>
#include <string_view>

namespace treerpo::reward {

struct ExtractOptions {
  // Fall back to "the answer is ..." / "final answer is ..." when there is no \boxed{}. Off for
  // rewards: the seed's evaluation counts a response without \boxed{} as wrong.
  bool answer_is_fallback = false;
};

// The content of the last \boxed{...} / \fbox{...} (braces matched; `\boxed 5` reads one token), or
// the fallback above when enabled; nullopt when the response holds no answer.
std::optional<std::string> extract_answer(std::string_view response, const ExtractOptions& = {});

// A GSM8K gold answer's final number: the text after "####", trimmed; nullopt when there is no
// "####".
std::optional<std::string> gsm8k_gold(std::string_view answer_text);

// The canonical text form of an answer (Qwen2.5-Math strip_string rules: no `$`, `\left`, units,
// `\%`, thousands separators, `x =` prefixes; `\dfrac` -> `\frac`; `a/b` -> `\frac{a}{b}`; ...).
std::string normalize_answer(std::string_view answer);

// Whether two answers are mathematically equal: equal text after normalisation, equal numbers
// (relative tolerance 1e-4, percent rule), equal tuples / intervals / sets element-wise, equal
// expressions. Symmetric in practice; bounded work.
bool answers_equal(std::string_view predicted, std::string_view gold);

struct Verdict {
  std::optional<std::string> extracted; // nullopt: no answer found in the response
  bool correct = false;
};

// Extract the response's answer and compare it with `gold`, which may be a GSM8K answer containing
// "####" (its final number is used) or a bare answer.
Verdict check(std::string_view response, std::string_view gold, const ExtractOptions& = {});

} // namespace treerpo::reward
