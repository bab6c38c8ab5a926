// libFuzzer target over the whole checker: the input is split at its first NUL into a response and
// a gold answer, then goes through extraction, normalisation and equivalence in both orders. Any
// crash, sanitizer report or run past -timeout fails. Built and run by scripts/fuzz.sh checker.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "treerpo/reward/checker.h"
#include "treerpo/reward/reward.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace treerpo::reward;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t split = input.find('\0');
  std::string_view response = input.substr(0, split);
  std::string_view gold = split == std::string_view::npos ? input : input.substr(split + 1);

  std::optional<std::string> boxed = extract_answer(response);
  extract_answer(response, ExtractOptions{true});
  gsm8k_gold(gold);
  normalize_answer(response);
  normalize_answer(gold);
  bool forward = answers_equal(response, gold);
  bool backward = answers_equal(gold, response);
  (void)forward;
  (void)backward;
  // Equality is reflexive on any input.
  if (!response.empty() && response.find_first_not_of(" \t\n\r\f\v") != std::string_view::npos &&
      !answers_equal(response, response)) {
    std::abort();
  }
  Verdict verdict = check(response, gold);
  if (verdict.correct && !verdict.extracted) std::abort();
  if (boxed) answers_equal(*boxed, gold);
  MathReward reward;
  double score = reward.score(response, gold);
  if (score != 0.0 && score != 1.0) std::abort();
  return 0;
}
