#pragma once
// The shapes an answer can have besides a single value: tuples, intervals, sets, bare comma lists,
// matrices and unions of intervals. Splitting is on top-level separators only, so `(1,(2,3))` has
// two items.
#include <optional>
#include <string_view>
#include <vector>

namespace treerpo::reward {

// Pieces of `text` between top-level occurrences of `separator` (outside any ( [ { bracket).
std::vector<std::string_view> split_top_level(std::string_view text, std::string_view separator);

struct Structure {
  char open = 0, close = 0; // the brackets as written; 0 for a bare comma list
  std::vector<std::string_view> items;
  bool is_set() const { return open == '{'; }
  bool is_bare() const { return open == 0; }
};

// A bracketed list (`(1,2]`, `{3,4}`, `[a,b]`) or a bare comma list (`1,2`); nullopt for a single
// value (a parenthesised value `(5)` is a value) or more than kMaxElements items.
std::optional<Structure> split_structure(std::string_view text);

// `\begin{pmatrix}a&b\\c&d\end{pmatrix}` -> rows of cells; nullopt when the text is not one matrix.
std::optional<std::vector<std::vector<std::string_view>>> split_matrix(std::string_view text);

} // namespace treerpo::reward
