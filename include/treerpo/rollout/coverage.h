#pragma once
// Text rules of the TreeRPO rollout (DESIGN §4): delimiters, the leaf length in characters, and
// where the reference implementation cuts a long leaf for its coverage split.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace treerpo::rollout {

// Whether `text` (a token's newly completed text) ends in one of `delimiters`.
bool ends_with_delimiter(const std::string& text, const std::vector<std::string>& delimiters);

// Unicode characters (code points) of UTF-8 text, as Python's len(str).
int64_t utf8_chars(const std::string& text);

// rollout.coverage = reference: the leaf keeps tokens [0, j) and gets two regenerated children,
// where j is the largest cut such that token j-1's text ends in a delimiter, at least `min_chars`
// characters follow it and j >= `min_tokens` (the reference's guard: the cut lies at least L_min
// tokens into the leaf). `token_text_end[i]` is the byte offset in `text` where token i's text
// ends. nullopt when no such cut exists (no coverage split).
std::optional<size_t> reference_cut(const std::string& text,
                                    const std::vector<size_t>& token_text_end,
                                    const std::vector<std::string>& delimiters, int64_t min_chars,
                                    int64_t min_tokens);

} // namespace treerpo::rollout
