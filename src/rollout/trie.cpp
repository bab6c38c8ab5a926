#include "treerpo/rollout/trie.h"

#include <algorithm>

namespace treerpo::rollout {

namespace {

struct TrieNode {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::vector<size_t> kids;
  int32_t ends = 0; // samples that end exactly here
};

// A sample ending where other samples go on must still be a leaf of its own, so a node that ends
// samples and has kids hands its ends to an empty-span kid (the trie's end marker).
size_t end_marker(std::vector<TrieNode>& trie, size_t at) {
  for (size_t k : trie[at].kids) {
    if (trie[k].ids.empty()) return k;
  }
  trie.emplace_back();
  trie[at].kids.push_back(trie.size() - 1);
  return trie.size() - 1;
}

void end_sample_at(std::vector<TrieNode>& trie, size_t at) {
  if (trie[at].kids.empty() && at != 0) {
    trie[at].ends += 1;
  } else {
    trie[end_marker(trie, at)].ends += 1;
  }
}

void add_kid(std::vector<TrieNode>& trie, size_t at, TrieNode kid) {
  if (trie[at].ends > 0) {
    const int32_t ends = trie[at].ends;
    trie[at].ends = 0;
    trie[end_marker(trie, at)].ends = ends;
  }
  trie.push_back(std::move(kid));
  trie[at].kids.push_back(trie.size() - 1);
}

void insert(std::vector<TrieNode>& trie, const Node& sample) {
  size_t cur = 0, pos = 0;
  const auto& ids = sample.token_ids;
  while (pos < ids.size()) {
    auto kid = std::find_if(trie[cur].kids.begin(), trie[cur].kids.end(), [&](size_t k) {
      return !trie[k].ids.empty() && trie[k].ids.front() == ids[pos];
    });
    if (kid == trie[cur].kids.end()) {
      TrieNode fresh;
      fresh.ids.assign(ids.begin() + pos, ids.end());
      fresh.logprobs.assign(sample.logprobs.begin() + pos, sample.logprobs.end());
      fresh.ends = 1;
      add_kid(trie, cur, std::move(fresh));
      return;
    }
    const size_t k = *kid;
    size_t m = 0;
    while (m < trie[k].ids.size() && pos + m < ids.size() && trie[k].ids[m] == ids[pos + m]) ++m;
    if (m < trie[k].ids.size()) {
      // The sample leaves or ends inside this span: split it there.
      TrieNode tail;
      tail.ids.assign(trie[k].ids.begin() + m, trie[k].ids.end());
      tail.logprobs.assign(trie[k].logprobs.begin() + m, trie[k].logprobs.end());
      tail.kids = std::move(trie[k].kids);
      tail.ends = trie[k].ends;
      trie[k].ids.resize(m);
      trie[k].logprobs.resize(m);
      trie[k].ends = 0;
      trie.push_back(std::move(tail));
      trie[k].kids = {trie.size() - 1};
    }
    pos += m;
    cur = k;
  }
  end_sample_at(trie, cur);
}

void emit(const std::vector<TrieNode>& trie, size_t at, int32_t parent, Tree& out) {
  for (size_t k : trie[at].kids) {
    const int32_t id = out.add_child(parent, NodeOrigin::Sample);
    Node& n = out.nodes[id];
    n.token_ids = trie[k].ids;
    n.logprobs = trie[k].logprobs;
    n.leaf = trie[k].kids.empty();
    n.samples = n.leaf ? trie[k].ends : 1;
    emit(trie, k, id, out);
  }
}

} // namespace

void merge_prefix_trie(Tree& tree, const TextStreamFactory& text) {
  std::vector<TrieNode> trie(1);
  for (int32_t child : tree.nodes[0].children) insert(trie, tree.nodes[child]);
  Node root = tree.nodes[0];
  root.children.clear();
  tree.nodes = {root};
  emit(trie, 0, 0, tree);
  // Each node's text is the stream's output over its span, with its ancestors' ids pushed first.
  std::vector<bool> done(tree.nodes.size(), false);
  for (int32_t leaf : tree.leaf_ids()) {
    std::vector<int32_t> chain;
    for (int32_t n = leaf; n > 0; n = tree.nodes[n].parent) chain.push_back(n);
    auto stream = text();
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      Node& n = tree.nodes[*it];
      std::string piece;
      for (int32_t id : n.token_ids) piece += stream->push(id);
      if (!done[*it]) n.text = std::move(piece);
      done[*it] = true;
    }
  }
}

} // namespace treerpo::rollout
