#include "utf8.h"

#include <utf8proc.h>

#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/util/error.h"

namespace treerpo::tokenizer {

size_t utf8_sequence(std::string_view s, size_t i, size_t* bad_len, bool* truncated) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b = byte(i);
  if (b < 0x80) return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF; // allowed range of the second byte (Unicode Table 3-7)
  if (b >= 0xC2 && b <= 0xDF) {
    need = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    *bad_len = 1;
    *truncated = false;
    return 0;
  }
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) {
      *bad_len = k;
      *truncated = true;
      return 0;
    }
    const uint8_t c = byte(i + k);
    const bool ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) {
      *bad_len = k;
      *truncated = false;
      return 0;
    }
  }
  return need;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0, bad;
  bool truncated;
  while (i < s.size()) {
    // ASCII runs are the common case; skip them eight bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= s.size()) break;
    const size_t n = utf8_sequence(s, i, &bad, &truncated);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

uint32_t decode_code_point(const char* p, size_t len) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  switch (len) {
  case 1:
    return u[0];
  case 2:
    return ((u[0] & 0x1Fu) << 6) | (u[1] & 0x3Fu);
  case 3:
    return ((u[0] & 0x0Fu) << 12) | ((u[1] & 0x3Fu) << 6) | (u[2] & 0x3Fu);
  default:
    return ((u[0] & 0x07u) << 18) | ((u[1] & 0x3Fu) << 12) | ((u[2] & 0x3Fu) << 6) | (u[3] & 0x3Fu);
  }
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

std::string lossy_utf8(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 8);
  size_t i = 0, bad;
  bool truncated;
  while (i < bytes.size()) {
    const size_t n = utf8_sequence(bytes, i, &bad, &truncated);
    if (n > 0) {
      out.append(bytes.data() + i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += bad;
    }
  }
  return out;
}

std::string nfc(std::string_view text) {
  const std::string valid = lossy_utf8(text);
  // Code points below U+0300 (lead bytes below 0xCC) are NFC-stable and never compose with a
  // neighbour unless a combining mark (U+0300 or above) follows, so such text is already in NFC.
  bool may_change = false;
  for (char c : valid) may_change |= static_cast<uint8_t>(c) >= 0xCC;
  if (!may_change) return valid;
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(valid.data()),
                   static_cast<utf8proc_ssize_t>(valid.size()), &out,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) {
    throw runtime_failure(std::string("NFC normalisation failed: ") + utf8proc_errmsg(n),
                          "tokenizer", "report this input as a bug");
  }
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

} // namespace treerpo::tokenizer
