#include "treerpo/rollout/coverage.h"

#include <algorithm>

namespace treerpo::rollout {

bool ends_with_delimiter(const std::string& text, const std::vector<std::string>& delimiters) {
  for (const std::string& d : delimiters) {
    if (!d.empty() && text.size() >= d.size() &&
        text.compare(text.size() - d.size(), d.size(), d) == 0) {
      return true;
    }
  }
  return false;
}

int64_t utf8_chars(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

std::optional<size_t> reference_cut(const std::string& text,
                                    const std::vector<size_t>& token_text_end,
                                    const std::vector<std::string>& delimiters, int64_t min_chars,
                                    int64_t min_tokens) {
  const size_t first = static_cast<size_t>(std::max<int64_t>(1, min_tokens));
  for (size_t j = token_text_end.size() - (token_text_end.empty() ? 0 : 1); j >= first; --j) {
    const size_t end = token_text_end[j - 1];
    if (utf8_chars(text.substr(end)) < min_chars) continue;
    if (ends_with_delimiter(text.substr(0, end), delimiters)) return j;
  }
  return std::nullopt;
}

} // namespace treerpo::rollout
