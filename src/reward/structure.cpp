// Splitting answers into their parts for element-wise comparison (structure.h).
#include "structure.h"

#include "bounds.h"
#include "text_scan.h"

namespace treerpo::reward {

std::vector<std::string_view> split_top_level(std::string_view text, std::string_view separator) {
  std::vector<std::string_view> parts;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (depth == 0 && text.substr(i, separator.size()) == separator) {
      parts.push_back(text.substr(start, i - start));
      start = i + separator.size();
      i = start - 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

std::optional<Structure> split_structure(std::string_view text) {
  Structure structure;
  std::string_view inner = text;
  char first = text.empty() ? 0 : text.front();
  if ((first == '(' || first == '[' || first == '{') &&
      matching_bracket(text, 0) == text.size() - 1) {
    structure.open = first;
    structure.close = text.back();
    inner = text.substr(1, text.size() - 2);
  }
  structure.items = split_top_level(inner, ",");
  if (structure.items.size() > kMaxElements) return std::nullopt;
  // A set may hold one element ({5}); one item in parentheses or bare is just a value.
  bool single_ok = structure.is_set() && !inner.empty();
  if (structure.items.size() < 2 && !single_ok) {
    // `{}` is the empty set.
    if (structure.is_set() && inner.empty()) {
      structure.items.clear();
      return structure;
    }
    return std::nullopt;
  }
  return structure;
}

std::optional<std::vector<std::vector<std::string_view>>> split_matrix(std::string_view text) {
  constexpr std::string_view kBegin = "\\begin{pmatrix}", kEnd = "\\end{pmatrix}";
  if (!starts_with(text, kBegin) || !ends_with(text, kEnd) ||
      text.size() < kBegin.size() + kEnd.size()) {
    return std::nullopt;
  }
  std::string_view body = text.substr(kBegin.size(), text.size() - kBegin.size() - kEnd.size());
  if (body.find("\\begin") != std::string_view::npos) return std::nullopt;
  std::vector<std::vector<std::string_view>> rows;
  std::size_t cells = 0;
  for (std::string_view row : split_top_level(body, "\\\\")) {
    if (trim(row).empty()) continue;
    rows.push_back(split_top_level(row, "&"));
    cells += rows.back().size();
    if (cells > kMaxElements) return std::nullopt;
  }
  return rows;
}

} // namespace treerpo::reward
