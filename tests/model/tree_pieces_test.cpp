// Cutting a packed tree into pieces of a bounded token count: each token owned once, each piece
// closed under ancestors, within the budget, cut where the hand-worked example says.
#include <gtest/gtest.h>

#include <vector>

#include "treerpo/model/tree_pieces.h"

namespace treerpo::model {
namespace {

// 0 <- 1 <- 2 (prompt); 3 <- 4 under 2; 5 <- 6 under 2; 7 under 4; 8 under 6.
//   tokens: 0 1 2 3 4 5 6 7 8, parents: -1 0 1 2 3 2 5 4 6.
PackedTree small_tree() {
  return {{10, 11, 12, 13, 14, 15, 16, 17, 18}, {-1, 0, 1, 2, 3, 2, 5, 4, 6}};
}

TEST(TreePieces, WithinTheBudgetTheTreeIsOnePiece) {
  for (int64_t budget : {int64_t{0}, int64_t{9}, int64_t{100}}) {
    const auto pieces = split_tree(small_tree(), budget);
    ASSERT_EQ(pieces.size(), 1u) << budget;
    EXPECT_EQ(pieces[0].tree.parent, small_tree().parent);
    EXPECT_EQ(pieces[0].owned.size(), 9u);
  }
}

// Budget 6, by hand: tokens 0-4 fill {0,1,2,3,4}; 5 would need {5}: 6 members, still fits; 6 needs
// {6}: 7 > 6, so a new piece starts at 6 with its chain {0,1,2,5,6}; 7 needs {3,4,7}: 8 > 6, new
// piece {0,1,2,3,4,7}; 8 needs {5,6,8}: 9 > 6, new piece {0,1,2,5,6,8}.
TEST(TreePieces, CutsWhereTheBudgetIsReached) {
  const auto pieces = split_tree(small_tree(), 6);
  ASSERT_EQ(pieces.size(), 4u);
  EXPECT_EQ(pieces[0].source, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(pieces[0].owned, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(pieces[1].source, (std::vector<int64_t>{0, 1, 2, 5, 6}));
  EXPECT_EQ(pieces[1].owned, (std::vector<int64_t>{4}));
  EXPECT_EQ(pieces[1].tree.parent, (std::vector<int32_t>{-1, 0, 1, 2, 3}));
  EXPECT_EQ(pieces[1].tree.tokens, (std::vector<int32_t>{10, 11, 12, 15, 16}));
  EXPECT_EQ(pieces[2].source, (std::vector<int64_t>{0, 1, 2, 3, 4, 7}));
  EXPECT_EQ(pieces[2].owned, (std::vector<int64_t>{5}));
  EXPECT_EQ(pieces[3].source, (std::vector<int64_t>{0, 1, 2, 5, 6, 8}));
  EXPECT_EQ(pieces[3].tree.parent, (std::vector<int32_t>{-1, 0, 1, 2, 3, 4}));
}

// On a bushy random tree and several budgets: every token owned by exactly one piece, every
// member's parent in its piece (renumbered to the same token), pieces within the budget unless a
// single chain is longer.
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
  for (int64_t budget : {int64_t{8}, int64_t{50}, int64_t{150}}) {
    std::vector<int> owners(tree.tokens.size(), 0);
    for (const TreePiece& piece : split_tree(tree, budget)) {
      for (int64_t k : piece.owned)
        ++owners[static_cast<size_t>(piece.source[static_cast<size_t>(k)])];
      if (static_cast<int64_t>(piece.source.size()) > budget) {
        // Only a lone token whose own chain is longer than the budget.
        ASSERT_EQ(piece.owned.size(), 1u);
        const int64_t s = piece.source[static_cast<size_t>(piece.owned[0])];
        EXPECT_EQ(depth[static_cast<size_t>(s)] + 1, static_cast<int64_t>(piece.source.size()));
      }
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
