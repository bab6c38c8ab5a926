#pragma once
// One tree as one JSON object (a line of trees.jsonl):
// {"prompt", "gold", "prompt_ids", "nodes": [{"id", "parent", "depth", "token_ids", "text",
//  "created_by", "split_entropy", "reward", "advantage", "leaf", "correct"}]}
#include <nlohmann/json.hpp>

#include "treerpo/rollout/tree.h"

namespace treerpo::rollout {

nlohmann::json tree_to_json(const Tree& tree);

} // namespace treerpo::rollout
