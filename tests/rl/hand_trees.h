#pragma once
// Small trees whose advantages and losses the tests compute by hand.
#include <initializer_list>

#include "treerpo/rollout/tree.h"

namespace treerpo::rl::testing {

inline int32_t grow(rollout::Tree& tree, int32_t parent, std::initializer_list<int32_t> tokens) {
  const int32_t id = tree.add_child(parent, rollout::NodeOrigin::Sample);
  tree.nodes[id].token_ids = tokens;
  tree.nodes[id].logprobs.assign(tokens.size(), -1.0f);
  return id;
}

inline void leaf(rollout::Tree& tree, int32_t node, double reward) {
  tree.nodes[node].leaf = true;
  tree.nodes[node].correct = reward > 0.5;
  tree.nodes[node].reward = reward;
}

inline rollout::Tree with_root(std::initializer_list<int32_t> prompt) {
  rollout::Tree tree;
  tree.prompt_ids = prompt;
  rollout::Node root;
  tree.nodes.push_back(root);
  return tree;
}

// Three levels, mixed rewards, a three-way set, a single-child chain and a tie (ids in brackets):
//   root[0] -> A[1]{10,11}, B[2]{20}
//   A -> C[3]{30,31}=1, D[4]{40}, E[5]{50}=0      D -> F[6]{60}=1, G[7]{70}=0
//   B -> H[8]{80,81} (only child)                  H -> I[9]{90}=0, J[10]{100}=0
// Leaf means: D 1/2, A 1/2, H 0, B 0, root 2/6.
inline rollout::Tree three_level_tree(double c = 1, double e = 0, double f = 1, double g = 0,
                                      double i = 0, double j = 0) {
  rollout::Tree tree = with_root({1, 2, 3});
  const int32_t a = grow(tree, 0, {10, 11});
  const int32_t b = grow(tree, 0, {20});
  leaf(tree, grow(tree, a, {30, 31}), c);
  const int32_t d = grow(tree, a, {40});
  leaf(tree, grow(tree, a, {50}), e);
  leaf(tree, grow(tree, d, {60}), f);
  leaf(tree, grow(tree, d, {70}), g);
  const int32_t h = grow(tree, b, {80, 81});
  leaf(tree, grow(tree, h, {90}), i);
  leaf(tree, grow(tree, h, {100}), j);
  return tree;
}

// GRPO shape: the root's children are four samples; sample 2 is a chain of two nodes.
//   root -> S1[1]{10,11}=1, S2[2]{20} -> S2b[5]{21,22}=0, S3[3]{30}=0, S4[4]{40,41,42}=1
inline rollout::Tree grpo_tree() {
  rollout::Tree tree = with_root({1, 2});
  leaf(tree, grow(tree, 0, {10, 11}), 1);
  const int32_t s2 = grow(tree, 0, {20});
  leaf(tree, grow(tree, 0, {30}), 0);
  leaf(tree, grow(tree, 0, {40, 41, 42}), 1);
  leaf(tree, grow(tree, s2, {21, 22}), 0);
  return tree;
}

// TEMPO shape: the prefix trie of samples [5 3 6 7 2]=1, [5 3 6 8]=0, [5 3 9]=1, [4]=0.
//   root -> X[1]{5,3}, Y[2]{4}=0     X -> P[3]{6}, Q[4]{9}=1     P -> K[5]{7,2}=1, L[6]{8}=0
// V: root 1/2, X 2/3, P 1/2.
inline rollout::Tree trie_tree() {
  rollout::Tree tree = with_root({1});
  const int32_t x = grow(tree, 0, {5, 3});
  leaf(tree, grow(tree, 0, {4}), 0);
  const int32_t p = grow(tree, x, {6});
  leaf(tree, grow(tree, x, {9}), 1);
  leaf(tree, grow(tree, p, {7, 2}), 1);
  leaf(tree, grow(tree, p, {8}), 0);
  return tree;
}

// A TEMPO trie with repeated samples: [5 3]=1 three times, [5 4]=0, [6]=0 (five samples).
//   root -> X[1]{5}, Y[2]{6}=0     X -> T[3]{3}=1 (samples 3), F[4]{4}=0
// mu = 3/5, V(X) = 3/4.
inline rollout::Tree repeated_trie_tree() {
  rollout::Tree tree = with_root({1});
  const int32_t x = grow(tree, 0, {5});
  leaf(tree, grow(tree, 0, {6}), 0);
  const int32_t t = grow(tree, x, {3});
  leaf(tree, t, 1);
  tree.nodes[t].samples = 3;
  leaf(tree, grow(tree, x, {4}), 0);
  return tree;
}

} // namespace treerpo::rl::testing
