#pragma once
// A self-contained HTML page showing a tree: nested boxes with each node's text, coloured by reward
// (red 0 .. green 1), and the split entropy on the edge to its children.
#include <string>

#include "treerpo/rollout/tree.h"

namespace treerpo::rollout {

std::string tree_to_html(const Tree& tree);

} // namespace treerpo::rollout
