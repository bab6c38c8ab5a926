#pragma once
// TEMPO's tree: n independent samples merged into a prefix trie where their token ids agree.
#include "treerpo/rollout/engine.h"
#include "treerpo/rollout/tree.h"

namespace treerpo::rollout {

// `tree` holds the root and one leaf child per sample; afterwards each node is a maximal span
// shared by the same set of samples, and every sample ends at a leaf (below the root, a node with
// one child never occurs). Identical samples share one leaf whose `samples` counts them; a sample
// that is a prefix of another ends at an empty-span leaf under the node where the other goes on.
// Texts are re-streamed.
void merge_prefix_trie(Tree& tree, const TextStreamFactory& text);

} // namespace treerpo::rollout
