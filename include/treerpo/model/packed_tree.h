#pragma once
// The training forward's input: one token tree flattened so every unique token appears once (DESIGN
// §5).
#include <cstdint>
#include <vector>

namespace treerpo::model {

struct PackedTree {
  std::vector<int32_t> tokens; // every tree token once (prompt tokens first), each after its parent
  std::vector<int32_t>
      parent; // index of the previous token on its path; -1 for the very first token
};
// Position of token i = its depth in the parent chain; token i attends to itself and all its
// ancestors.

} // namespace treerpo::model
