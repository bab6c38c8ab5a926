#pragma once
// One tree as one JSON object, a line of trees.jsonl (trees/step-N.jsonl, `rollout --out`): what a
// viewer needs per token (id, text piece, sampling log-prob), per split point (entropy, the branch
// tokens) and per node (origin, reward, advantage, leaf verdict, extracted answer). The schema,
// with every field described, is docs/trees.schema.json.
#include <nlohmann/json.hpp>

#include "treerpo/rollout/tree.h"
#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::rollout {

// `tok` decodes each token's text piece; it must be the tokenizer the tree was sampled with.
nlohmann::json tree_to_json(const Tree& tree, const tokenizer::Tokenizer& tok);

} // namespace treerpo::rollout
