#include "byte_level.h"

#include <array>
#include <unordered_map>

#include "utf8.h"

namespace treerpo::tokenizer {
namespace {

struct ByteMap {
  std::array<std::string, 256> symbol;
  std::unordered_map<uint32_t, unsigned char> byte_of;

  // GPT-2 bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
  // U+0100...
  ByteMap() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
      append_utf8(symbol[b], cp);
      byte_of[cp] = static_cast<unsigned char>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

} // namespace

const std::string& byte_to_symbol(unsigned char b) {
  return byte_map().symbol[b];
}

std::optional<std::string> symbols_to_bytes(std::string_view symbols) {
  const ByteMap& map = byte_map();
  std::string out;
  out.reserve(symbols.size());
  size_t i = 0, bad;
  bool truncated;
  while (i < symbols.size()) {
    const size_t n = utf8_sequence(symbols, i, &bad, &truncated);
    if (n == 0) return std::nullopt;
    auto it = map.byte_of.find(decode_code_point(symbols.data() + i, n));
    if (it == map.byte_of.end()) return std::nullopt;
    out += static_cast<char>(it->second);
    i += n;
  }
  return out;
}

std::string bytes_to_symbols(std::string_view bytes) {
  std::string out;
  for (char c : bytes) out += byte_to_symbol(static_cast<unsigned char>(c));
  return out;
}

} // namespace treerpo::tokenizer
