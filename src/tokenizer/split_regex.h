#pragma once
// The pre-tokenizer's split pattern, compiled with PCRE2 (JIT, UTF + UCP) to behave like the
// Oniguruma regex HF tokenizers runs.
#include <string>
#include <string_view>

namespace treerpo::tokenizer {

class SplitRegex {
public:
  // `literal`: the pattern is a plain string (HF's Split {"String": ...}). `where` names the file
  // and component in error messages.
  SplitRegex(const std::string& pattern, bool literal, const std::string& where);
  ~SplitRegex();
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;

  // HF Split with behaviour Isolated: every match and every gap between matches becomes a piece, in
  // order.
  template <class OnPiece> void split(std::string_view text, OnPiece&& on_piece) const {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t start, end;
      if (!find(text, pos, &start, &end)) break;
      if (start > pos) on_piece(text.substr(pos, start - pos));
      on_piece(text.substr(start, end - start));
      pos = end;
    }
    if (pos < text.size()) on_piece(text.substr(pos));
  }

private:
  // The first non-empty match at or after `from`.
  bool find(std::string_view text, size_t from, size_t* start, size_t* end) const;

  void* code_; // pcre2_code_8*
  std::string pattern_;
};

// Rewrites Oniguruma's \s and \S for PCRE2: Oniguruma's \s is exactly Unicode White_Space; PCRE2's
// UCP \s lacks U+0085 and matches U+180E.
std::string oniguruma_to_pcre2(const std::string& pattern, const std::string& where);

} // namespace treerpo::tokenizer
