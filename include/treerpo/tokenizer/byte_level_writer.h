#pragma once
// Writes a small but real byte-level BPE tokenizer folder (tokenizer.json + tokenizer_config.json)
// that loads through the same code path as Qwen's: NFC normaliser, the Qwen2 split regex, ByteLevel
// decoder. Used by the training demo and by tests that need a tiny model with a real tokenizer.
#include <string>
#include <utility>
#include <vector>

namespace treerpo::tokenizer {

// Vocabulary: ids 0..255 are the 256 single bytes (id == byte value), then one token per merge in
// the given order, then the special tokens. Merges are pairs of raw UTF-8 text pieces (e.g. {" ",
// "t"},
// {"t", "h"}), each of which must already be a token (a byte or the result of an earlier merge).
// <|endoftext|> and <|im_end|> are appended to the special tokens when missing;
// tokenizer_config.json names
// <|im_end|> as eos and <|endoftext|> as pad. Creates `dir` if needed; throws treerpo::Error on bad
// merges (bad_input) or unwritable files (runtime_failure).
void write_byte_level_tokenizer(const std::string& dir,
                                const std::vector<std::pair<std::string, std::string>>& merges,
                                const std::vector<std::string>& special_tokens);

} // namespace treerpo::tokenizer
