#include "sentencepiece_tokenizer.h"

#include "sentencepiece_library.h"
#include "treerpo/util/error.h"
#include "utf8.h"

namespace treerpo::tokenizer {
namespace {

constexpr const char* kSpaceSymbol = "\xE2\x96\x81"; // U+2581, sentencepiece's word boundary

std::string replace_space_symbols(const std::string& piece) {
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, 3, kSpaceSymbol) == 0) {
      out += ' ';
      i += 3;
    } else {
      out += piece[i++];
    }
  }
  return out;
}

} // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path)
    : lib_(&sentencepiece_library()), path_(path) {
  std::string error;
  sp_ = lib_->load(path, &error);
  if (!sp_) {
    throw bad_input("cannot load the sentencepiece model: " + error, path,
                    "pass a sentencepiece .model file or an HF tokenizer.json");
  }
  std::vector<AddedToken> specials;
  for (int id = 0; id < lib_->piece_size(sp_); ++id) {
    kinds_.push_back(lib_->kind(sp_, id));
    if (kinds_.back() & (kControlPiece | kUnknownPiece)) {
      specials.push_back({id, lib_->id_to_piece(sp_, id), true, false, false, false});
    }
  }
  specials_ = std::make_unique<AddedTokenMatcher>(specials);
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  lib_->destroy(sp_);
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view input) const {
  const std::string text = lossy_utf8(input);
  std::vector<int32_t> out;
  specials_->split(text, [&](std::string_view piece, int32_t id) {
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    std::vector<int> ids;
    std::string error;
    if (!lib_->encode(sp_, std::string(piece), &ids, &error)) {
      throw runtime_failure("sentencepiece encode failed: " + error, path_,
                            "report the input text as a bug");
    }
    out.insert(out.end(), ids.begin(), ids.end());
  });
  return out;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids,
                                           bool skip_special) const {
  std::string bytes;
  bool at_start = true;
  for (int32_t id : ids) {
    const std::string b = token_bytes(id, at_start, skip_special);
    at_start &= b.empty();
    bytes += b;
  }
  return lossy_utf8(bytes);
}

std::string SentencePieceTokenizer::token_bytes(int32_t id, bool at_start,
                                                bool skip_special) const {
  if (id < 0 || id >= vocab_size()) return {};
  if (is_special(id)) return skip_special ? std::string() : lib_->id_to_piece(sp_, id);
  const std::string piece = lib_->id_to_piece(sp_, id);
  if (kinds_[id] & kBytePiece) { // "<0xAB>"
    return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
  }
  // sentencepiece itself knows whether the first piece's dummy-prefix space is dropped.
  if (at_start) return lib_->decode_ids(sp_, std::vector<int>{id});
  return replace_space_symbols(piece);
}

int32_t SentencePieceTokenizer::vocab_size() const {
  return static_cast<int32_t>(kinds_.size());
}

std::optional<int32_t> SentencePieceTokenizer::token_id(std::string_view token) const {
  const std::string t(token);
  const int id = lib_->piece_to_id(sp_, t);
  // PieceToId answers unk_id for unknown pieces; only the unknown piece itself maps there.
  if ((kinds_[id] & kUnknownPiece) && lib_->id_to_piece(sp_, id) != t) return std::nullopt;
  return id;
}

bool SentencePieceTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && (kinds_[id] & (kControlPiece | kUnknownPiece));
}

std::optional<int32_t> SentencePieceTokenizer::model_eos() const {
  const int id = lib_->eos_id(sp_);
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}

std::optional<int32_t> SentencePieceTokenizer::model_pad() const {
  const int id = lib_->pad_id(sp_);
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}

} // namespace treerpo::tokenizer
