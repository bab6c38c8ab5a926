#pragma once
// Added (and special) tokens found in raw text before normal tokenization: leftmost, longest first,
// as HF's AddedVocabulary does with its Aho-Corasick automaton.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace treerpo::tokenizer {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;    // the token absorbs the whitespace before it
  bool rstrip = false;    // ... and after it
  bool normalized = true; // matched in the normalised text rather than the raw text
};

class AddedTokenMatcher {
public:
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);
  bool empty() const { return tokens_.empty(); }

  // Calls on_piece(text, -1) for plain text and on_piece({}, id) for each token found, in order.
  template <class OnPiece> void split(std::string_view text, OnPiece&& on_piece) const {
    size_t plain_from = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      if (!first_byte_[static_cast<unsigned char>(text[i])]) continue;
      const int32_t k = longest_match(text, i);
      if (k < 0) continue;
      const AddedToken& tok = tokens_[k];
      size_t start = i, end = i + tok.content.size();
      if (tok.lstrip) start = strip_back(text, plain_from, start);
      if (tok.rstrip) end = strip_forward(text, end);
      if (start > plain_from) on_piece(text.substr(plain_from, start - plain_from), -1);
      on_piece(std::string_view(), tok.id);
      plain_from = end;
      i = end - 1;
    }
    if (plain_from < text.size()) on_piece(text.substr(plain_from), -1);
  }

private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t token = -1; // index into tokens_ of the token ending here
  };
  int32_t longest_match(std::string_view text, size_t at) const;
  static size_t strip_back(std::string_view text, size_t floor, size_t start);
  static size_t strip_forward(std::string_view text, size_t end);

  std::vector<AddedToken> tokens_;
  std::vector<Node> trie_;
  bool first_byte_[256] = {};
};

} // namespace treerpo::tokenizer
