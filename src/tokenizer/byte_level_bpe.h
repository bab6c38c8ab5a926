#pragma once
// The tokenizer.json backend: byte-level BPE with an optional NFC normaliser, split-regex
// pre-tokenizers and added tokens, producing the ids HF tokenizers produces.
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "added_tokens.h"
#include "bpe.h"
#include "split_regex.h"
#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::tokenizer {

// What tokenizer.json describes, in raw bytes where the file uses byte-level symbols.
struct ByteLevelBpeSpec {
  std::string source; // the file, for error messages
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  bool ignore_merges = false;
  bool nfc = false;
  // Pre-tokenizer steps in order: a Split by `pattern`, or (last) ByteLevel's optional prefix space
  // and its own GPT-2 split.
  struct PreStep {
    std::string pattern; // empty: no split
    bool literal = false;
    bool add_prefix_space = false;
  };
  std::vector<PreStep> pre_steps;
  std::vector<AddedToken> added;
};

// Parses tokenizer.json text; throws bad_input naming `spec.source` and the unsupported component.
ByteLevelBpeSpec parse_tokenizer_json(const std::string& text, const std::string& source);

class ByteLevelBpe : public Tokenizer {
public:
  explicit ByteLevelBpe(ByteLevelBpeSpec spec);

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(bytes_of_id_.size()); }
  std::optional<int32_t> token_id(std::string_view token) const override;
  std::vector<int32_t> eos_ids() const override { return eos_ids_; }
  std::optional<int32_t> pad_id() const override { return pad_id_; }
  bool is_special(int32_t id) const override;
  std::string token_bytes(int32_t id, bool at_start, bool skip_special) const override;

  void set_generation_tokens(std::vector<int32_t> eos, std::optional<int32_t> pad) {
    eos_ids_ = std::move(eos);
    pad_id_ = pad;
  }

private:
  struct PreStep {
    std::unique_ptr<SplitRegex> regex;
    bool add_prefix_space = false;
  };
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
  void pre_tokenize(size_t step, std::string_view piece, std::vector<int32_t>& out) const;

  Bpe bpe_;
  bool nfc_;
  std::vector<PreStep> steps_;
  AddedTokenMatcher raw_added_, normalized_added_;
  std::vector<std::string> bytes_of_id_; // what each id decodes to
  std::vector<char> special_;
  std::unordered_map<std::string, int32_t> id_of_token_; // exact token strings, as in the file
  std::vector<int32_t> eos_ids_;
  std::optional<int32_t> pad_id_;
};

} // namespace treerpo::tokenizer
