#pragma once
// A packed tree cut into pieces of a bounded token count, for a training forward whose activations
// must fit a budget (train.max_tokens_per_forward). Every tree token is owned by exactly one piece;
// a piece holds its owned tokens and every ancestor of them (the shared prefix, recomputed in each
// piece that needs it), so each owned token's log-prob in its piece equals its log-prob in the
// whole tree. Summing each piece's loss over its owned tokens only counts every token once: the
// gradients equal the whole tree's.
#include <cstdint>
#include <vector>

#include "treerpo/model/packed_tree.h"

namespace treerpo::model {

struct TreePiece {
  PackedTree tree;             // the piece's tokens in tree order, parents renumbered
  std::vector<int64_t> source; // tree index of each piece token
  std::vector<int64_t> owned;  // piece indices of the tokens this piece owns
};

// Tokens are taken in tree order; a token joins the current piece when the piece, with the token
// and whichever of its ancestors the piece lacks, stays within the budget; otherwise a new piece
// starts from it. The budget is `max_tokens`, raised to twice the tree's longest root-to-token
// chain when smaller (the prefix a piece recomputes is then at most half of it). max_tokens <= 0,
// or a tree within the budget: one piece.
std::vector<TreePiece> split_tree(const PackedTree& tree, int64_t max_tokens);

} // namespace treerpo::model
