#define PCRE2_CODE_UNIT_WIDTH 8
#include "split_regex.h"

#include <pcre2.h>

#include "treerpo/util/error.h"

namespace treerpo::tokenizer {
namespace {

// Unicode White_Space, spelled out: PCRE2's UCP \s lacks U+0085 and adds U+180E.
constexpr const char* kWhiteSpace =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";

pcre2_code* as_code(void* p) {
  return static_cast<pcre2_code*>(p);
}

// Per-thread match state: one ovector pair is all a split needs, and a JIT stack large enough for
// long whitespace runs under the lookahead.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

} // namespace

std::string oniguruma_to_pcre2(const std::string& pattern, const std::string& where) {
  std::string out;
  bool in_class = false;
  size_t class_start = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        out += in_class ? kWhiteSpace : std::string("[") + kWhiteSpace + "]";
      } else if (e == 'S') {
        if (in_class) {
          throw bad_input("split regex uses \\S inside a character class, which is not supported",
                          where, "write the class without \\S");
        }
        out += std::string("[^") + kWhiteSpace + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      class_start = out.size();
    } else if (c == ']' && in_class) {
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      const size_t members = out.size() - class_start - 1;
      const bool negated = members >= 1 && out[class_start + 1] == '^';
      if (members > (negated ? 1u : 0u)) in_class = false;
    }
    out += c;
  }
  return out;
}

SplitRegex::SplitRegex(const std::string& pattern, bool literal, const std::string& where)
    : pattern_(pattern) {
  const std::string translated = literal ? pattern : oniguruma_to_pcre2(pattern, where);
  int error = 0;
  PCRE2_SIZE offset = 0;
  const uint32_t options =
      PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK | (literal ? PCRE2_LITERAL : 0);
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), options,
                        &error, &offset, nullptr);
  if (!code_) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw bad_input("split regex does not compile at offset " + std::to_string(offset) + ": " +
                        reinterpret_cast<const char*>(message),
                    where, "check the pre_tokenizer pattern");
  }
  // Without JIT (unsupported CPU) pcre2_match still runs the same pattern, only slower.
  pcre2_jit_compile(as_code(code_), PCRE2_JIT_COMPLETE);
}

SplitRegex::~SplitRegex() {
  pcre2_code_free(as_code(code_));
}

bool SplitRegex::find(std::string_view text, size_t from, size_t* start, size_t* end) const {
  thread_local MatchState state;
  // Oniguruma steps past an empty match; HF then drops the empty piece.
  for (size_t at = from; at <= text.size();) {
    const int rc = pcre2_match(as_code(code_), reinterpret_cast<PCRE2_SPTR>(text.data()),
                               text.size(), at, PCRE2_NO_UTF_CHECK, state.data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      throw runtime_failure(std::string("split regex failed: ") +
                                reinterpret_cast<const char*>(message),
                            "pattern " + pattern_, "report the input text as a bug");
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
    if (ov[1] > ov[0]) {
      *start = ov[0];
      *end = ov[1];
      return true;
    }
    // Empty match: retry one character further on.
    at = ov[0] + 1;
    while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
  }
  return false;
}

} // namespace treerpo::tokenizer
