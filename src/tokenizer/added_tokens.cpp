#include "added_tokens.h"

#include "utf8.h"

namespace treerpo::tokenizer {

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) : trie_(1) {
  for (const AddedToken& tok : tokens) {
    if (tok.content.empty()) continue;
    int32_t node = 0;
    for (char ch : tok.content) {
      const auto c = static_cast<unsigned char>(ch);
      int32_t child = -1;
      for (const auto& [label, next] : trie_[node].children) {
        if (label == c) child = next;
      }
      if (child < 0) {
        child = static_cast<int32_t>(trie_.size());
        trie_[node].children.emplace_back(c, child);
        trie_.emplace_back();
      }
      node = child;
    }
    if (trie_[node].token >= 0) continue; // the same content twice: the first entry wins
    trie_[node].token = static_cast<int32_t>(tokens_.size());
    tokens_.push_back(tok);
    first_byte_[static_cast<unsigned char>(tok.content[0])] = true;
  }
}

int32_t AddedTokenMatcher::longest_match(std::string_view text, size_t at) const {
  int32_t node = 0, found = -1;
  for (size_t i = at; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    int32_t child = -1;
    for (const auto& [label, next] : trie_[node].children) {
      if (label == c) child = next;
    }
    if (child < 0) break;
    node = child;
    if (trie_[node].token >= 0) found = trie_[node].token;
  }
  return found;
}

size_t AddedTokenMatcher::strip_back(std::string_view text, size_t floor, size_t start) {
  while (start > floor) {
    size_t lead = start - 1;
    while (lead > floor && (static_cast<unsigned char>(text[lead]) & 0xC0) == 0x80) --lead;
    if (!is_white_space(decode_code_point(text.data() + lead, start - lead))) break;
    start = lead;
  }
  return start;
}

size_t AddedTokenMatcher::strip_forward(std::string_view text, size_t end) {
  size_t bad;
  bool truncated;
  while (end < text.size()) {
    const size_t n = utf8_sequence(text, end, &bad, &truncated);
    if (n == 0 || !is_white_space(decode_code_point(text.data() + end, n))) break;
    end += n;
  }
  return end;
}

} // namespace treerpo::tokenizer
