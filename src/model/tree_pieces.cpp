#include "treerpo/model/tree_pieces.h"

#include <algorithm>

namespace treerpo::model {
namespace {

// The piece of `members` (tree indices in any order) and its owned subset.
TreePiece make_piece(const PackedTree& tree, std::vector<int64_t> members,
                     const std::vector<int64_t>& owned_sources) {
  std::sort(members.begin(), members.end());
  TreePiece piece;
  piece.source = members;
  std::vector<int64_t> local(tree.tokens.size(), -1);
  for (size_t k = 0; k < members.size(); ++k) {
    const int64_t i = members[k];
    local[static_cast<size_t>(i)] = static_cast<int64_t>(k);
    piece.tree.tokens.push_back(tree.tokens[static_cast<size_t>(i)]);
    const int32_t p = tree.parent[static_cast<size_t>(i)];
    piece.tree.parent.push_back(p < 0 ? -1 : static_cast<int32_t>(local[static_cast<size_t>(p)]));
  }
  for (int64_t i : owned_sources) piece.owned.push_back(local[static_cast<size_t>(i)]);
  std::sort(piece.owned.begin(), piece.owned.end());
  return piece;
}

} // namespace

std::vector<TreePiece> split_tree(const PackedTree& tree, int64_t max_tokens) {
  const auto n = static_cast<int64_t>(tree.tokens.size());
  std::vector<TreePiece> pieces;
  // At least twice the longest root-to-token chain: a piece then always has room for as many owned
  // tokens as the prefix it recomputes (a smaller budget would make pieces of one token each,
  // forwarding the whole prefix again for every token).
  std::vector<int64_t> chain(static_cast<size_t>(n));
  int64_t longest = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t p = tree.parent[static_cast<size_t>(i)];
    chain[static_cast<size_t>(i)] = p < 0 ? 1 : chain[static_cast<size_t>(p)] + 1;
    longest = std::max(longest, chain[static_cast<size_t>(i)]);
  }
  if (max_tokens > 0) max_tokens = std::max(max_tokens, 2 * longest);
  if (max_tokens <= 0 || n <= max_tokens) {
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    if (n > 0) pieces.push_back(make_piece(tree, all, all));
    return pieces;
  }
  // in_piece[i]: token i is a member of the current piece (an owned token or an ancestor).
  std::vector<char> in_piece(static_cast<size_t>(n), 0);
  std::vector<int64_t> members, owned, missing;
  auto close = [&] {
    if (owned.empty()) return;
    pieces.push_back(make_piece(tree, members, owned));
    for (int64_t m : members) in_piece[static_cast<size_t>(m)] = 0;
    members.clear();
    owned.clear();
  };
  for (int64_t i = 0; i < n; ++i) {
    // Token i and the ancestors the piece lacks (a parent always comes earlier).
    auto lacking = [&] {
      missing.clear();
      if (in_piece[static_cast<size_t>(i)] != 0) return;
      for (int64_t a = i; a >= 0 && in_piece[static_cast<size_t>(a)] == 0;
           a = tree.parent[static_cast<size_t>(a)]) {
        missing.push_back(a);
      }
    };
    lacking();
    if (!owned.empty() && static_cast<int64_t>(members.size() + missing.size()) > max_tokens) {
      close();
      lacking();
    }
    for (int64_t m : missing) {
      in_piece[static_cast<size_t>(m)] = 1;
      members.push_back(m);
    }
    owned.push_back(i);
  }
  close();
  return pieces;
}

} // namespace treerpo::model
