#pragma once
// GPT-2's reversible byte <-> printable-character map that byte-level BPE vocabularies are written
// in (byte 0x20 ' ' is written as U+0120 'Ġ', and so on).
#include <optional>
#include <string>
#include <string_view>

namespace treerpo::tokenizer {

// The character (as UTF-8) that stands for byte `b` in a byte-level vocabulary.
const std::string& byte_to_symbol(unsigned char b);

// Raw bytes of a vocabulary string; nullopt if a character in it stands for no byte.
std::optional<std::string> symbols_to_bytes(std::string_view symbols);

// The vocabulary string of raw bytes.
std::string bytes_to_symbols(std::string_view bytes);

} // namespace treerpo::tokenizer
