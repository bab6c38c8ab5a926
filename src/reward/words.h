#pragma once
// The word-level steps of normalize_answer, run before spaces are removed.
#include <string>

namespace treerpo::reward {

// "five" -> "5", "twenty-one" -> "21", "one hundred and five" -> "105" when the whole answer is a
// number in words (the Qwen evaluation's word2number step); returns whether it rewrote `s`.
bool words_to_number(std::string& s);

// "18 dollars" -> "18", "5 square feet" -> "5", "18 eggs" -> "18": unit words at the end of the
// answer.
void drop_trailing_unit_words(std::string& s);

// "1 and 2" -> "1 , 2": "and" between answers separates a list.
void and_to_comma(std::string& s);

} // namespace treerpo::reward
