#pragma once
// The sentencepiece backend for `.model` files (Llama-2 / Mistral style checkpoints).
#include <memory>
#include <string>

#include "added_tokens.h"
#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::tokenizer {

class SentencePieceTokenizer : public Tokenizer {
public:
  // Throws bad_input naming `path` when it is missing or not a sentencepiece model.
  explicit SentencePieceTokenizer(const std::string& path);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  // Control and unknown pieces (<s>, </s>, <unk>) written in the text are recognised as those
  // tokens, as HF's Llama tokenizer does; the text between them goes through sentencepiece.
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override;
  int32_t vocab_size() const override;
  std::optional<int32_t> token_id(std::string_view token) const override;
  std::vector<int32_t> eos_ids() const override { return eos_ids_; }
  std::optional<int32_t> pad_id() const override { return pad_id_; }
  bool is_special(int32_t id) const override;
  std::string token_bytes(int32_t id, bool at_start, bool skip_special) const override;

  std::optional<int32_t> model_eos() const;
  std::optional<int32_t> model_pad() const;
  void set_generation_tokens(std::vector<int32_t> eos, std::optional<int32_t> pad) {
    eos_ids_ = std::move(eos);
    pad_id_ = pad;
  }

private:
  const struct SentencePieceLibrary* lib_;
  void* sp_; // the library's processor
  std::unique_ptr<AddedTokenMatcher> specials_;
  std::vector<int> kinds_; // kControlPiece | kUnknownPiece | kBytePiece per id
  std::string path_;
  std::vector<int32_t> eos_ids_;
  std::optional<int32_t> pad_id_;
};

} // namespace treerpo::tokenizer
