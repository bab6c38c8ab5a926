#pragma once
// The one object every rollout scheme produces: a token tree hanging off one prompt (DESIGN §1).
// Plain data: rollout/ grows it, reward/ scores its leaves, rl/ turns it into per-token advantages.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace treerpo::rollout {

// Why a node exists; written to trees.jsonl as "created_by".
enum class NodeOrigin { Root, Forced, Entropy, Coverage, Sample };

const char* origin_name(NodeOrigin origin);

struct Node {
  int32_t id = 0;
  int32_t parent = -1; // -1 for the root
  int32_t depth = 0;   // root 0, its children 1, ...
  NodeOrigin origin = NodeOrigin::Root;
  std::vector<int32_t>
      token_ids; // this node's own span (the root's span is empty: the prompt is Tree::prompt_ids)
  std::vector<float> logprobs; // sampling-time log-prob of each span token (pi_old), same length
  std::string text; // the span's text, streamed with its ancestors' text pushed before it
  std::vector<int32_t> children;
  // Entropy of the top-k distribution at the split that created this node's children; none if it
  // never split.
  std::optional<float> split_entropy;
  bool leaf = false;
  // Leaves: how many of the rollout's samples ended with exactly this path. Always 1, except in a
  // TEMPO trie, which stores identical samples once; credit and loss weigh a leaf by it.
  int32_t samples = 1;
  std::optional<bool> correct; // leaves, once scored
  double reward = 0.0;         // leaf: 1/0 from the checker; interior: mean of descendant leaves
  double advantage = 0.0;      // sibling-relative (credit rule), carried by every token of the span
};

struct Tree {
  std::string prompt;              // the question as given (before the chat template)
  std::string gold;                // gold answer text (GSM8K "#### n" or bare)
  std::vector<int32_t> prompt_ids; // chat-formatted prompt token ids
  std::vector<Node> nodes;         // nodes[0] is the root; a parent always precedes its children

  const Node& root() const { return nodes.front(); }
  std::vector<int32_t> leaf_ids() const;
  // prompt + spans of the node's ancestors (excluding the node itself): the context the node
  // continues.
  std::vector<int32_t> context_ids(int32_t node) const;
  // Generated ids from the root to the end of `node` (without the prompt): a leaf's full answer.
  std::vector<int32_t> answer_ids(int32_t node) const;
  // Number of tokens stored in the tree (prompt once + every node span once).
  int64_t unique_tokens() const;
  int32_t max_depth() const;
  int32_t add_child(int32_t parent, NodeOrigin origin);
};

} // namespace treerpo::rollout
