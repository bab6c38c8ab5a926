#pragma once
// Text <-> token ids. One interface, two backends: Hugging Face `tokenizer.json` byte-level BPE
// (Qwen2/2.5/3, Llama-3 style; ids equal the `tokenizers` library's) and sentencepiece `.model`
// files.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace treerpo::tokenizer {

class Tokenizer {
public:
  virtual ~Tokenizer() = default;

  // path: a model folder (uses tokenizer.json, else tokenizer.model; reads tokenizer_config.json
  // and generation_config.json if present), or a tokenizer.json / .model file directly. Throws
  // treerpo::Error (bad_input) naming the file and the problem.
  static std::unique_ptr<Tokenizer> load(const std::string& path);

  // Special/added tokens in the text are recognised, as HF encode(text, add_special_tokens=False).
  // Invalid UTF-8 in `text` is first replaced by U+FFFD (what a caller holding a Unicode string
  // would pass).
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Unknown ids are skipped, as HF does; invalid UTF-8 in the result is replaced by U+FFFD (lossy).
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  virtual int32_t vocab_size() const = 0; // incl. added tokens (max id + 1)
  virtual std::optional<int32_t> token_id(std::string_view token) const = 0; // exact token string
  // The ids that end a generation: tokenizer_config's eos_token, generation_config's eos_token_id
  // and, where present, the chat terminators <|im_end|> and <|endoftext|>.
  virtual std::vector<int32_t> eos_ids() const = 0;
  virtual std::optional<int32_t> pad_id() const = 0;
  virtual bool is_special(int32_t id) const = 0;

  // The raw bytes token `id` adds to a decoded text, before UTF-8 repair (empty for unknown ids).
  // `at_start`: nothing has been decoded before it (sentencepiece drops its dummy-prefix space
  // there). decode(ids) == lossy_utf8(concatenation of token_bytes), which is what lets
  // StreamDecoder stream.
  virtual std::string token_bytes(int32_t id, bool at_start, bool skip_special) const = 0;
};

// Streaming decode for rollouts: push ids one at a time; returns the text that became complete
// (only at full UTF-8 boundaries; bytes of an unfinished character are held back). text() is
// everything emitted so far. Copyable, so a rollout branch can be forked with its decoder state.
// The tokenizer must outlive it.
class StreamDecoder {
public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false);
  std::string push(int32_t id);
  const std::string& text() const { return text_; }
  // Bytes held back because they may start a character that the next token completes.
  const std::string& pending() const { return pending_; }

private:
  const Tokenizer* tok_;
  bool skip_special_;
  bool at_start_ = true;
  std::string pending_;
  std::string text_;
};

// Unicode NFC of UTF-8 text (invalid UTF-8 is replaced by U+FFFD first), as HF's NFC normaliser.
std::string nfc(std::string_view text);

// UTF-8 with every maximal invalid subsequence replaced by U+FFFD (Rust's String::from_utf8_lossy).
std::string lossy_utf8(std::string_view bytes);

} // namespace treerpo::tokenizer
