// Cutting a packed tree into pieces of a bounded token count: each token owned once, each piece
// closed under ancestors, within the budget, cut where the hand-worked example says.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "treerpo/model/tree_pieces.h"

namespace treerpo::model {
namespace {

// Root 0 with five branches of two tokens: [1 2] [3 4] [5 6] [7 8] [9 10] (the first of each under
// 0). The longest chain is 3 tokens, so budgets below 6 count as 6.
PackedTree small_tree() {
  return {{10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, {-1, 0, 1, 0, 3, 0, 5, 0, 7, 0, 9}};
}

TEST(TreePieces, WithinTheBudgetTheTreeIsOnePiece) {
  for (int64_t budget : {int64_t{0}, int64_t{11}, int64_t{100}}) {
    const auto pieces = split_tree(small_tree(), budget);
    ASSERT_EQ(pieces.size(), 1u) << budget;
    EXPECT_EQ(pieces[0].tree.parent, small_tree().parent);
    EXPECT_EQ(pieces[0].owned.size(), 11u);
  }
}

// Budget 6, by hand: tokens 0-5 fill {0..5}; 6 would make 7 > 6, so a new piece starts at 6 with
// its chain {0,5,6}; 7, 8, 9 join (each adds itself: 4, 5, 6 members); 10 would make 7, so the last
// piece is {0,9,10}. A budget of 2 is raised to 6 (twice the 3-token chains): the same pieces.
TEST(TreePieces, CutsWhereTheBudgetIsReached) {
  for (int64_t budget : {int64_t{6}, int64_t{2}}) {
    const auto pieces = split_tree(small_tree(), budget);
    ASSERT_EQ(pieces.size(), 3u) << budget;
    EXPECT_EQ(pieces[0].source, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(pieces[0].owned, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(pieces[1].source, (std::vector<int64_t>{0, 5, 6, 7, 8, 9}));
    EXPECT_EQ(pieces[1].owned, (std::vector<int64_t>{2, 3, 4, 5}));
    EXPECT_EQ(pieces[1].tree.parent, (std::vector<int32_t>{-1, 0, 1, 0, 3, 0}));
    EXPECT_EQ(pieces[1].tree.tokens, (std::vector<int32_t>{10, 15, 16, 17, 18, 19}));
    EXPECT_EQ(pieces[2].source, (std::vector<int64_t>{0, 9, 10}));
    EXPECT_EQ(pieces[2].owned, (std::vector<int64_t>{2}));
    EXPECT_EQ(pieces[2].tree.parent, (std::vector<int32_t>{-1, 0, 1}));
  }
}

// On a bushy random tree and several budgets: every token owned by exactly one piece, every
// member's parent in its piece (renumbered to the same token), pieces within the budget.
TEST(TreePieces, EveryTokenOwnedOnceAndEveryPieceClosedUnderAncestors) {
  PackedTree tree;
  uint64_t state = 12345;
  for (int32_t i = 0; i < 400; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    tree.tokens.push_back(i);
    // Mostly the previous token (spans), sometimes a branch from anywhere earlier.
    const auto r = static_cast<int32_t>(state >> 33);
    tree.parent.push_back(i == 0 ? -1 : (r % 5 == 0 ? r % i : i - 1));
  }
  std::vector<int64_t> depth(tree.tokens.size());
  for (size_t i = 1; i < depth.size(); ++i)
    depth[i] = depth[static_cast<size_t>(tree.parent[i])] + 1;
  const int64_t longest = *std::max_element(depth.begin(), depth.end()) + 1;
  for (int64_t budget : {int64_t{8}, int64_t{50}, int64_t{150}}) {
    std::vector<int> owners(tree.tokens.size(), 0);
    for (const TreePiece& piece : split_tree(tree, budget)) {
      for (int64_t k : piece.owned)
        ++owners[static_cast<size_t>(piece.source[static_cast<size_t>(k)])];
      // Within the budget, raised to twice the longest chain where that is more.
      EXPECT_LE(static_cast<int64_t>(piece.source.size()), std::max(budget, 2 * longest));
      for (size_t k = 0; k < piece.source.size(); ++k) {
        EXPECT_EQ(piece.tree.tokens[k], tree.tokens[static_cast<size_t>(piece.source[k])]);
        const int32_t p = piece.tree.parent[k];
        const int32_t want = tree.parent[static_cast<size_t>(piece.source[k])];
        if (want < 0) {
          EXPECT_EQ(p, -1);
        } else {
          ASSERT_GE(p, 0) << "an ancestor is missing from its piece";
          EXPECT_EQ(piece.source[static_cast<size_t>(p)], want);
        }
      }
    }
    for (size_t i = 0; i < owners.size(); ++i) EXPECT_EQ(owners[i], 1) << "token " << i;
  }
}

} // namespace
} // namespace treerpo::model
