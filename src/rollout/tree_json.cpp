#include "treerpo/rollout/tree_json.h"

#include <cmath>

#include "treerpo/reward/checker.h"

namespace treerpo::rollout {

namespace {

// Log-probs to 1e-4: a viewer shades by them; full float digits would double the file.
nlohmann::json rounded(float logprob) {
  if (!std::isfinite(logprob)) return nullptr;
  return std::round(static_cast<double>(logprob) * 1e4) / 1e4;
}

// Each token's piece is the text that token completes when the path from the root is decoded one
// token at a time (the engine's StreamDecoder): a byte-level token that ends inside a UTF-8
// character has the piece "" and the token that completes the character carries all of it, so a
// node's pieces concatenate to its text. `decoders[id]` is the state after node id's span.
std::vector<std::vector<std::string>> token_pieces(const Tree& tree,
                                                   const tokenizer::Tokenizer& tok) {
  std::vector<std::vector<std::string>> pieces(tree.nodes.size());
  std::vector<tokenizer::StreamDecoder> decoders(tree.nodes.size(), tokenizer::StreamDecoder(tok));
  for (const Node& n : tree.nodes) {
    auto id = static_cast<size_t>(n.id);
    if (n.parent >= 0) decoders[id] = decoders[static_cast<size_t>(n.parent)];
    for (int32_t t : n.token_ids) pieces[id].push_back(decoders[id].push(t));
  }
  return pieces;
}

// The generated text from the root to the end of `node`: what the checker scored.
std::string path_text(const Tree& tree, int32_t node) {
  std::string text;
  for (int32_t n = node; n > 0; n = tree.nodes[static_cast<size_t>(n)].parent)
    text.insert(0, tree.nodes[static_cast<size_t>(n)].text);
  return text;
}

nlohmann::json optional_text(const std::optional<std::string>& s) {
  return s ? nlohmann::json(*s) : nlohmann::json();
}

} // namespace

nlohmann::json tree_to_json(const Tree& tree, const tokenizer::Tokenizer& tok) {
  const auto pieces = token_pieces(tree, tok);
  nlohmann::json nodes = nlohmann::json::array();
  for (const Node& n : tree.nodes) {
    nlohmann::json j;
    j["id"] = n.id;
    j["parent"] = n.parent;
    j["depth"] = n.depth;
    j["created_by"] = origin_name(n.origin);
    j["token_ids"] = n.token_ids;
    j["pieces"] = pieces[static_cast<size_t>(n.id)];
    nlohmann::json logprobs = nlohmann::json::array();
    for (float lp : n.logprobs) logprobs.push_back(rounded(lp));
    j["logprobs"] = std::move(logprobs);
    j["text"] = n.text;
    j["children"] = n.children;
    j["split_entropy"] = n.split_entropy ? nlohmann::json(*n.split_entropy) : nlohmann::json();
    // The split point after this node's last token: the first token of each child, in child order.
    nlohmann::json branches = nlohmann::json::array();
    for (int32_t c : n.children) {
      const Node& child = tree.nodes[static_cast<size_t>(c)];
      if (child.token_ids.empty()) continue;
      branches.push_back({{"node", c},
                          {"token_id", child.token_ids.front()},
                          {"piece", pieces[static_cast<size_t>(c)].front()},
                          {"logprob", rounded(child.logprobs.front())}});
    }
    j["branch_tokens"] = std::move(branches);
    j["reward"] = n.reward;
    j["advantage"] = n.advantage;
    j["leaf"] = n.leaf;
    if (n.leaf) {
      j["samples"] = n.samples;
      j["correct"] = n.correct ? nlohmann::json(*n.correct) : nlohmann::json();
      j["answer"] = optional_text(reward::extract_answer(path_text(tree, n.id)));
    }
    nodes.push_back(std::move(j));
  }
  const std::optional<std::string> gsm8k = reward::gsm8k_gold(tree.gold);
  return {{"prompt", tree.prompt},
          {"gold", tree.gold},
          {"gold_answer", gsm8k ? *gsm8k : tree.gold},
          {"prompt_ids", tree.prompt_ids},
          {"nodes", std::move(nodes)}};
}

} // namespace treerpo::rollout
