#pragma once
// UTF-8 scanning shared by encode (validation, NFC) and decode (lossy repair, streaming
// boundaries).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace treerpo::tokenizer {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 when s[i] starts an invalid or
// truncated sequence; then `*bad_len` is the length of its maximal invalid subpart (what one U+FFFD
// replaces) and `*truncated` says the subpart runs to the end of `s` (more bytes could still
// complete it).
size_t utf8_sequence(std::string_view s, size_t i, size_t* bad_len, bool* truncated);

// True when `s` is valid UTF-8.
bool is_valid_utf8(std::string_view s);

// Decodes the valid sequence of `len` bytes at `p` to a code point.
uint32_t decode_code_point(const char* p, size_t len);

// Appends the UTF-8 encoding of `cp`.
void append_utf8(std::string& out, uint32_t cp);

// Unicode White_Space (Rust's char::is_whitespace, used by HF for added tokens' lstrip/rstrip).
bool is_white_space(uint32_t cp);

} // namespace treerpo::tokenizer
