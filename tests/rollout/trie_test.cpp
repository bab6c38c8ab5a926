// The TEMPO prefix trie on hand-written samples: shared spans, repeated samples, and samples that
// are prefixes of others, in both insertion orders.
#include <gtest/gtest.h>

#include "scripted_model.h"
#include "treerpo/rollout/trie.h"

namespace treerpo::rollout {
namespace {

using namespace testing;

Tree samples_tree(const std::vector<std::vector<int32_t>>& samples) {
  Tree tree;
  tree.prompt_ids = {kY};
  tree.nodes.emplace_back();
  for (const auto& ids : samples) {
    const int32_t id = tree.add_child(0, NodeOrigin::Sample);
    tree.nodes[id].token_ids = ids;
    for (int32_t t : ids) tree.nodes[id].logprobs.push_back(-0.1f * static_cast<float>(t + 1));
    tree.nodes[id].leaf = true;
  }
  merge_prefix_trie(tree, piece_streams());
  return tree;
}

// "span:samples" for a leaf, "span" for an interior node, children in brackets.
std::string shape(const Tree& t, int32_t node = 0) {
  std::string out;
  for (int32_t id : t.nodes[node].token_ids) out += kPieces[id];
  if (t.nodes[node].leaf) return out + ":" + std::to_string(t.nodes[node].samples);
  out += "[";
  for (int32_t c : t.nodes[node].children) out += shape(t, c) + " ";
  if (out.back() == ' ') out.pop_back();
  return out + "]";
}

TEST(PrefixTrie, SharedSpansSplitWhereSamplesDisagree) {
  const Tree t = samples_tree({{kA, kB, kX}, {kA, kB, kY}, {kZ}});
  EXPECT_EQ(shape(t), "[ab[x:1 y:1] z:1]");
  // Log-probs travel with their tokens.
  EXPECT_EQ(t.nodes[1].logprobs, (std::vector<float>{-0.1f, -0.2f}));
  EXPECT_EQ(t.nodes[1].text, "ab");
}

TEST(PrefixTrie, IdenticalSamplesShareOneLeafThatCountsThem) {
  const Tree t = samples_tree({{kA, kB}, {kA, kX}, {kA, kB}, {kA, kB}});
  EXPECT_EQ(shape(t), "[a[b:3 x:1]]");
}

TEST(PrefixTrie, APrefixSampleEndsAtAnEmptyLeafWhicheverComesFirst) {
  // The shorter sample inserted after the longer one ends inside its span...
  EXPECT_EQ(shape(samples_tree({{kA, kB, kX}, {kA, kB}})), "[ab[x:1 :1]]");
  // ...or before it: the leaf it ended on becomes interior and hands its count to the marker.
  EXPECT_EQ(shape(samples_tree({{kA, kB}, {kA, kB}, {kA, kB, kX}})), "[ab[:2 x:1]]");
  // Two prefixes at different depths, repeated.
  EXPECT_EQ(shape(samples_tree({{kA, kB, kX}, {kA}, {kA, kB}, {kA}})), "[a[b[x:1 :1] :2]]");
}

TEST(PrefixTrie, EverySampleEndsAtALeafAndNoInteriorNodeHasOneChild) {
  const std::vector<std::vector<int32_t>> samples = {
      {kA, kB, kX}, {kA}, {kA, kB}, {kA}, {kA, kB, kX, kY}, {kB}, {kA, kB, kX}, {kB, kA}};
  const Tree t = samples_tree(samples);
  int32_t total = 0;
  for (int32_t leaf : t.leaf_ids()) total += t.nodes[leaf].samples;
  EXPECT_EQ(total, static_cast<int32_t>(samples.size()));
  for (const Node& n : t.nodes) {
    if (n.id > 0 && !n.leaf) {
      EXPECT_GE(n.children.size(), 2u) << "node " << n.id;
    }
    if (n.leaf) {
      EXPECT_TRUE(n.children.empty());
    }
  }
  EXPECT_EQ(shape(t), "[a[b[x[:2 y:1] :1] :2] b[:1 a:1]]");
}

} // namespace
} // namespace treerpo::rollout
