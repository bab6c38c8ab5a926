// Finding the answer in a response: the last \boxed{} (Qwen2.5-Math evaluation, parser.py), the
// "the answer is" fallback, and a GSM8K gold answer's "####" line.
#include <string>
#include <string_view>

#include "text_scan.h"
#include "treerpo/reward/checker.h"

namespace treerpo::reward {
namespace {

constexpr std::string_view kBoxCommands[] = {"\\boxed", "\\fbox", "\\framebox"};

// The argument of the box command ending at `after`: a braced group, or for `\boxed 5` the text up
// to the closing `$` or end of line. nullopt when the group never closes (a response cut off inside
// its answer).
std::optional<std::string> box_argument(std::string_view text, std::size_t after) {
  std::size_t pos = after;
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
  if (pos < text.size() && text[pos] == '{') {
    std::size_t close = matching_brace(text, pos);
    if (close == std::string_view::npos) return std::nullopt;
    return std::string(trim(text.substr(pos + 1, close - pos - 1)));
  }
  // `\boxed 5` needs the space: `\boxedfoo` is a different command.
  if (pos == after) return std::nullopt;
  std::size_t end = pos;
  while (end < text.size() && text[end] != '$' && text[end] != '\n') ++end;
  std::string_view arg = trim(text.substr(pos, end - pos));
  if (arg.empty()) return std::nullopt;
  return std::string(arg);
}

std::optional<std::string> last_box(std::string_view text) {
  std::size_t best = std::string_view::npos, best_end = 0;
  for (std::string_view command : kBoxCommands) {
    // rfind from the end for each command; the command must not continue with letters (`\fboxsep`).
    for (std::size_t hit = text.rfind(command); hit != std::string_view::npos;
         hit = hit == 0 ? std::string_view::npos : text.rfind(command, hit - 1)) {
      if (!command_at(text, hit, command)) continue;
      if (best == std::string_view::npos || hit > best) {
        best = hit;
        best_end = hit + command.size();
      }
      break;
    }
  }
  if (best == std::string_view::npos) return std::nullopt;
  return box_argument(text, best_end);
}

// "The answer is 42." -> "42": the rest of that line, without a leading colon or trailing period.
std::optional<std::string> answer_is_phrase(std::string_view text) {
  std::size_t best = std::string_view::npos, best_end = 0;
  for (std::string_view phrase :
       {std::string_view("he answer is"), std::string_view("final answer is")}) {
    std::size_t hit = text.rfind(phrase);
    if (hit != std::string_view::npos && (best == std::string_view::npos || hit > best)) {
      best = hit;
      best_end = hit + phrase.size();
    }
  }
  if (best == std::string_view::npos) return std::nullopt;
  std::size_t end = text.find('\n', best_end);
  std::string_view rest =
      trim(text.substr(best_end, end == std::string_view::npos ? end : end - best_end));
  if (!rest.empty() && rest.front() == ':') rest = trim(rest.substr(1));
  while (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

} // namespace

std::optional<std::string> extract_answer(std::string_view response,
                                          const ExtractOptions& options) {
  if (std::optional<std::string> boxed = last_box(response)) return boxed;
  if (options.answer_is_fallback) return answer_is_phrase(response);
  return std::nullopt;
}

std::optional<std::string> gsm8k_gold(std::string_view answer_text) {
  std::size_t hit = answer_text.rfind("####");
  if (hit == std::string_view::npos) return std::nullopt;
  std::string_view rest = trim(answer_text.substr(hit + 4));
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

} // namespace treerpo::reward
