#pragma once
// Byte-pair merging of one pre-tokenized word: the BPE model of HF tokenizers, on raw bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace treerpo::tokenizer {

class Bpe {
public:
  // vocab: raw-bytes token -> id (must hold all 256 single bytes); merges in rank order as (left,
  // right) raw-bytes tokens whose concatenation is in the vocabulary. `ignore_merges`: a word that
  // is itself a token is taken whole (HF's BPE option, used by Llama-3). `source` names the file in
  // error messages.
  Bpe(std::unordered_map<std::string, int32_t> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
      const std::string& source);

  // The id of the token whose raw bytes are `bytes`.
  std::optional<int32_t> id_of(std::string_view bytes) const;

  // Appends the ids of `word` (non-empty). Results are cached per thread.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

private:
  struct Merge {
    int32_t rank = -1;
    int32_t id = -1;
  };
  // Open addressing over (left id, right id) keys: the merge lookup is the hot loop of encoding.
  struct PairTable {
    std::vector<uint64_t> keys;
    std::vector<Merge> values;
    uint64_t mask = 0;
    void reserve(size_t n);
    void insert(uint64_t key, Merge m);
    Merge find(uint64_t key) const;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  std::unordered_map<std::string, int32_t> vocab_;
  int32_t byte_id_[256];
  PairTable merges_;
  bool ignore_merges_;
  uint64_t uid_; // tells apart the per-thread caches of different Bpe objects
};

} // namespace treerpo::tokenizer
