// Word-level rules of normalisation (words.h): numbers in words, unit words, "and" between answers.
#include "words.h"

#include <array>
#include <cstdint>
#include <utility>

#include "text_scan.h"

namespace treerpo::reward {
namespace {

// Unit words dropped after a number ("5 cm", "18 dollars"), matched whole and lower-cased.
constexpr std::string_view kUnitWords[] = {
    "dollars", "dollar", "cents",   "cent",   "units",  "unit",    "meters",     "meter",
    "metres",  "metre",  "m",       "cm",     "mm",     "km",      "kilometers", "kilometer",
    "inches",  "inch",   "feet",    "foot",   "ft",     "yards",   "yard",       "miles",
    "mile",    "mph",    "kg",      "g",      "grams",  "gram",    "pounds",     "pound",
    "lbs",     "lb",     "ounces",  "ounce",  "oz",     "tons",    "ton",        "liters",
    "liter",   "litres", "litre",   "l",      "ml",     "gallons", "gallon",     "cups",
    "cup",     "hours",  "hour",    "hrs",    "hr",     "h",       "minutes",    "minute",
    "mins",    "min",    "seconds", "second", "secs",   "sec",     "s",          "days",
    "day",     "weeks",  "week",    "months", "month",  "years",   "year",       "degrees",
    "degree",  "deg",    "percent", "sq",     "square", "cubic",   "acres",      "acre",
    "units^2"};

bool is_unit_word(std::string_view word) {
  for (std::string_view unit : kUnitWords) {
    if (equal_ignoring_case(word, unit)) return true;
  }
  return false;
}

// "18 eggs": a lower-case word of three or more letters after a number names what is counted. Scale
// words are not such nouns ("3 hundred" is 300, not 3).
bool is_counted_noun(std::string_view word) {
  if (word.size() < 3) return false;
  for (char c : word) {
    if (c < 'a' || c > 'z') return false;
  }
  for (std::string_view scale : {"hundred", "thousand", "million", "billion", "trillion", "dozen",
                                 "hundreds", "thousands", "millions", "billions", "dozens"}) {
    if (word == scale) return false;
  }
  return true;
}

// "five" -> "5", "twenty-one" -> "21", "one hundred and five" -> "105": only when the whole answer
// is a number in words (the Qwen evaluation's word2number step).
} // namespace

bool words_to_number(std::string& s) {
  static constexpr std::array<std::string_view, 20> kSmall = {
      "zero",     "one",     "two",     "three",     "four",     "five",    "six",
      "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",  "thirteen",
      "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  static constexpr std::array<std::string_view, 8> kTens = {
      "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
  if (s.size() > 80) return false;
  std::int64_t total = 0, current = 0;
  int words = 0;
  std::size_t pos = 0;
  while (pos < s.size()) {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '-')) ++pos;
    std::size_t end = pos;
    while (end < s.size() && is_alpha(s[end])) ++end;
    if (end == pos)
      return pos >= s.size() && words > 0 ? (s = std::to_string(total + current), true) : false;
    std::string_view word(s.data() + pos, end - pos);
    pos = end;
    bool known = false;
    for (std::size_t i = 0; i < kSmall.size() && !known; ++i) {
      if (equal_ignoring_case(word, kSmall[i]))
        current += static_cast<std::int64_t>(i), known = true;
    }
    for (std::size_t i = 0; i < kTens.size() && !known; ++i) {
      if (equal_ignoring_case(word, kTens[i]))
        current += 20 + 10 * static_cast<std::int64_t>(i), known = true;
    }
    if (!known && equal_ignoring_case(word, "hundred"))
      current = (current == 0 ? 1 : current) * 100, known = true;
    for (auto [name, scale] : {std::pair<std::string_view, std::int64_t>{"thousand", 1000},
                               {"million", 1000000},
                               {"billion", 1000000000}}) {
      if (!known && equal_ignoring_case(word, name)) {
        total += (current == 0 ? 1 : current) * scale;
        current = 0;
        known = true;
      }
    }
    if (!known && equal_ignoring_case(word, "and") && words > 0) known = true;
    if (!known) return false;
    ++words;
  }
  if (words == 0) return false;
  s = std::to_string(total + current);
  return true;
}

// "18 dollars" -> "18", "5 square feet" -> "5", "18 eggs" -> "18": unit words at the end, after a
// space, behind a number. Unlike strip_string, words elsewhere stay, so a variable named `a` or `m`
// inside an expression survives.
void drop_trailing_unit_words(std::string& s) {
  for (int round = 0; round < 4; ++round) {
    std::string_view view = trim(s);
    std::size_t end = view.size();
    if (end >= 2 && view[end - 2] == '^' && is_digit(view[end - 1])) end -= 2;
    std::size_t start = end;
    while (start > 0 && is_alpha(view[start - 1])) --start;
    if (start == end || start == 0 || view[start - 1] != ' ') return;
    std::string_view unit = view.substr(start, end - start);
    std::string_view rest = trim(view.substr(0, start));
    if (rest.empty()) return;
    if (!is_unit_word(unit) && !(is_digit(rest.back()) && is_counted_noun(unit))) return;
    // Behind a number, or behind another unit word ("square feet"); never behind a variable ("x
    // m").
    char last = rest.back();
    std::size_t word = rest.size();
    while (word > 0 && is_alpha(rest[word - 1])) --word;
    bool after_unit = word < rest.size() && is_unit_word(rest.substr(word));
    if (!is_digit(last) && last != '}' && last != ')' && !after_unit) return;
    s = std::string(rest);
  }
}

// "1 and 2" -> "1 , 2": "and" between answers is a list separator (strip_string deletes it, merging
// the numbers).
void and_to_comma(std::string& s) {
  for (std::size_t hit = s.find(" and "); hit != std::string::npos;
       hit = s.find(" and ", hit + 3)) {
    s.replace(hit, 5, " , ");
  }
}

} // namespace treerpo::reward
