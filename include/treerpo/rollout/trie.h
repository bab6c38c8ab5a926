#pragma once
// TEMPO's tree: n independent samples merged into a prefix trie where their token ids agree.
#include "treerpo/rollout/engine.h"
#include "treerpo/rollout/tree.h"

namespace treerpo::rollout {

// `tree` holds the root and one leaf child per sample; afterwards each node is a maximal span
// shared by the same set of samples (a node with one child never occurs). A sample identical to
// another, or a prefix of it, shares its nodes: the trie stores each distinct path once. Texts are
// re-streamed.
void merge_prefix_trie(Tree& tree, const TextStreamFactory& text);

} // namespace treerpo::rollout
