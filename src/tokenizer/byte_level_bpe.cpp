#include "byte_level_bpe.h"

#include "byte_level.h"
#include "treerpo/util/error.h"
#include "utf8.h"

namespace treerpo::tokenizer {
namespace {

std::vector<AddedToken> select_added(const std::vector<AddedToken>& all, bool normalized) {
  std::vector<AddedToken> out;
  for (const AddedToken& t : all) {
    if (t.normalized == normalized) out.push_back(t);
  }
  return out;
}

// Text whose lead bytes are all below 0xCC (code points below U+0300) is already NFC; see nfc().
bool may_change_under_nfc(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0xCC) return true;
  }
  return false;
}

// Ids index dense tables: one far beyond any real vocabulary (the largest in use are a few
// hundred thousand) is a damaged file, not a reason to allocate gigabytes.
constexpr int32_t kIdLimit = int32_t{1} << 22;

int32_t max_id(const ByteLevelBpeSpec& spec) {
  int32_t m = -1;
  for (const auto& [bytes, id] : spec.vocab) m = std::max(m, id);
  for (const AddedToken& t : spec.added) m = std::max(m, t.id);
  if (m >= kIdLimit) {
    throw bad_input("token id " + std::to_string(m) + " is beyond " + std::to_string(kIdLimit) +
                        ", far past any real vocabulary",
                    spec.source, "check the file's vocab and added_tokens ids");
  }
  return m;
}

} // namespace

ByteLevelBpe::ByteLevelBpe(ByteLevelBpeSpec spec)
    : bpe_(spec.vocab, spec.merges, spec.ignore_merges, spec.source), nfc_(spec.nfc),
      raw_added_(select_added(spec.added, false)),
      normalized_added_(select_added(spec.added, true)) {
  const int32_t size = max_id(spec) + 1;
  bytes_of_id_.resize(size);
  special_.assign(size, 0);
  for (auto& [bytes, id] : spec.vocab) {
    if (id < 0) throw bad_input("negative token id " + std::to_string(id), spec.source);
    bytes_of_id_[id] = bytes;
  }
  // HF (>= 0.20) decodes added tokens verbatim, outside the ByteLevel decoder.
  for (const AddedToken& t : spec.added) {
    if (t.id < 0) throw bad_input("negative token id " + std::to_string(t.id), spec.source);
    bytes_of_id_[t.id] = t.content;
    special_[t.id] = t.special;
    id_of_token_.emplace(t.content, t.id);
  }
  for (const ByteLevelBpeSpec::PreStep& s : spec.pre_steps) {
    PreStep step;
    step.add_prefix_space = s.add_prefix_space;
    if (!s.pattern.empty()) {
      step.regex =
          std::make_unique<SplitRegex>(s.pattern, s.literal, spec.source + ": pre_tokenizer");
    }
    steps_.push_back(std::move(step));
  }
}

std::vector<int32_t> ByteLevelBpe::encode(std::string_view input) const {
  std::string repaired;
  std::string_view text = input;
  if (!is_valid_utf8(input)) {
    repaired = lossy_utf8(input);
    text = repaired;
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  raw_added_.split(text, [&](std::string_view piece, int32_t id) {
    if (id >= 0) {
      out.push_back(id);
    } else {
      encode_plain(piece, out);
    }
  });
  return out;
}

void ByteLevelBpe::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  std::string normalized;
  if (nfc_ && may_change_under_nfc(text)) {
    normalized = nfc(text);
    text = normalized;
  }
  normalized_added_.split(text, [&](std::string_view piece, int32_t id) {
    if (id >= 0) {
      out.push_back(id);
    } else {
      pre_tokenize(0, piece, out);
    }
  });
}

void ByteLevelBpe::pre_tokenize(size_t step, std::string_view piece,
                                std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (step == steps_.size()) {
    bpe_.encode_word(piece, out);
    return;
  }
  const PreStep& s = steps_[step];
  std::string prefixed;
  if (s.add_prefix_space && piece[0] != ' ') {
    prefixed = " " + std::string(piece);
    piece = prefixed;
  }
  if (s.regex) {
    s.regex->split(piece, [&](std::string_view p) { pre_tokenize(step + 1, p, out); });
  } else {
    pre_tokenize(step + 1, piece, out);
  }
}

std::string ByteLevelBpe::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) bytes += token_bytes(id, bytes.empty(), skip_special);
  return lossy_utf8(bytes);
}

std::string ByteLevelBpe::token_bytes(int32_t id, bool, bool skip_special) const {
  if (id < 0 || id >= vocab_size()) return {};
  if (skip_special && special_[id]) return {};
  return bytes_of_id_[id];
}

std::optional<int32_t> ByteLevelBpe::token_id(std::string_view token) const {
  auto it = id_of_token_.find(std::string(token));
  if (it != id_of_token_.end()) return it->second;
  const auto bytes = symbols_to_bytes(token);
  if (!bytes) return std::nullopt;
  return bpe_.id_of(*bytes);
}

bool ByteLevelBpe::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && special_[id];
}

} // namespace treerpo::tokenizer
