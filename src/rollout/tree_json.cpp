#include "treerpo/rollout/tree_json.h"

namespace treerpo::rollout {

nlohmann::json tree_to_json(const Tree& tree) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const Node& n : tree.nodes) {
    nlohmann::json j;
    j["id"] = n.id;
    j["parent"] = n.parent;
    j["depth"] = n.depth;
    j["token_ids"] = n.token_ids;
    j["text"] = n.text;
    j["created_by"] = origin_name(n.origin);
    j["split_entropy"] = n.split_entropy ? nlohmann::json(*n.split_entropy) : nlohmann::json();
    j["reward"] = n.reward;
    j["advantage"] = n.advantage;
    j["leaf"] = n.leaf;
    if (n.leaf) j["samples"] = n.samples;
    if (n.leaf) j["correct"] = n.correct ? nlohmann::json(*n.correct) : nlohmann::json();
    nodes.push_back(std::move(j));
  }
  return {{"prompt", tree.prompt},
          {"gold", tree.gold},
          {"prompt_ids", tree.prompt_ids},
          {"nodes", std::move(nodes)}};
}

} // namespace treerpo::rollout
