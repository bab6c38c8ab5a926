// grpo, tempo, treepo and fixed trees on the same engine, with scripted distributions.
#include <map>
#include <set>
#include <utility>

#include <gtest/gtest.h>

#include "scripted_model.h"

namespace treerpo::rollout {
namespace {

using namespace testing;

const std::vector<int32_t> kPrompt = {kY};

// Flat distribution over a, b (and eos after 6 tokens): samples share prefixes often.
std::vector<float> coin_script(const std::vector<int32_t>& ctx) {
  std::vector<float> l(kVocab, -30.0f);
  if (ctx.size() - kPrompt.size() >= 6) {
    l[kEos] = 0.0f;
  } else {
    l[kA] = 0.0f;
    l[kB] = 0.0f;
  }
  return l;
}

// Always "a", never ends before the caps.
std::vector<float> endless_script(const std::vector<int32_t>&) {
  return peaked(kA, 20.0f);
}

RolloutSetup setup(const std::string& algorithm) {
  RolloutSetup s;
  s.config.algorithm = algorithm;
  s.config.temperature = 1.0;
  s.config.top_p = 1.0;
  s.config.repetition_penalty = 1.0;
  s.eos_ids = {kEos};
  s.seed = 5;
  return s;
}

std::vector<Tree> grow(const RolloutSetup& s, ScriptedModel::Script script, int prompts = 2) {
  ScriptedModel model(128, std::move(script));
  std::vector<PromptInput> in(prompts, PromptInput{"q", "1", kPrompt});
  return grow_trees(model, piece_streams(), s, in);
}

TEST(GrpoShape, RootHasNLeafChildren) {
  RolloutSetup s = setup("grpo");
  s.config.samples = 6;
  for (const Tree& t : grow(s, coin_script)) {
    ASSERT_EQ(t.root().children.size(), 6u);
    for (int32_t c : t.root().children) {
      EXPECT_TRUE(t.nodes[c].leaf);
      EXPECT_EQ(t.nodes[c].origin, NodeOrigin::Sample);
      EXPECT_EQ(t.nodes[c].token_ids.size(), 7u); // 6 coin tokens + eos
    }
  }
}

// Each distinct answer with the number of samples that gave it.
std::map<std::vector<int32_t>, int32_t> sample_counts(const Tree& t) {
  std::map<std::vector<int32_t>, int32_t> counts;
  for (int32_t leaf : t.leaf_ids()) counts[t.answer_ids(leaf)] += t.nodes[leaf].samples;
  return counts;
}

// One coin flip, then "x x" and eos: only two distinct answers, so eight samples repeat.
std::vector<float> one_flip_script(const std::vector<int32_t>& ctx) {
  const size_t generated = ctx.size() - kPrompt.size();
  if (generated == 0) {
    std::vector<float> l(kVocab, -30.0f);
    l[kA] = l[kB] = 0.0f;
    return l;
  }
  return peaked(generated < 3 ? kX : kEos, 30.0f);
}

// Eight samples per prompt as grpo's flat children and, from the same seed, as tempo's trie.
std::pair<std::vector<Tree>, std::vector<Tree>> flat_and_trie(ScriptedModel::Script script) {
  RolloutSetup grpo = setup("grpo"), tempo = setup("tempo");
  grpo.config.samples = tempo.config.samples = 8;
  return {grow(grpo, script), grow(tempo, script)};
}

TEST(TempoShape, RepeatedSamplesShareALeafThatCountsThem) {
  auto [flat, tries] = flat_and_trie(one_flip_script);
  for (size_t i = 0; i < flat.size(); ++i) {
    const auto counts = sample_counts(flat[i]);
    ASSERT_LE(counts.size(), 2u);
    EXPECT_EQ(sample_counts(tries[i]), counts);
    int32_t total = 0;
    for (int32_t leaf : tries[i].leaf_ids()) total += tries[i].nodes[leaf].samples;
    EXPECT_EQ(total, 8);
    EXPECT_EQ(tries[i].leaf_ids().size(), counts.size());
  }
}

TEST(TempoShape, SamplesMergeIntoAPrefixTrie) {
  auto [flat, tries] = flat_and_trie(coin_script);
  for (size_t i = 0; i < flat.size(); ++i) {
    // Same seed: tempo's samples are grpo's; the trie stores each distinct sample once, on a leaf
    // that counts its repeats.
    EXPECT_EQ(sample_counts(tries[i]), sample_counts(flat[i]));
    std::set<std::vector<int32_t>> samples, paths;
    for (int32_t c : flat[i].root().children) samples.insert(flat[i].nodes[c].token_ids);
    const Tree& t = tries[i];
    for (int32_t leaf : t.leaf_ids()) paths.insert(t.answer_ids(leaf));
    EXPECT_EQ(paths, samples);
    for (const Node& n : t.nodes) {
      if (n.id > 0) {
        EXPECT_LT(n.parent, n.id);
      }
      EXPECT_NE(n.children.size(), 1u) << "a trie node with one child would be merged";
      std::set<int32_t> firsts;
      for (int32_t c : n.children) firsts.insert(t.nodes[c].token_ids.front());
      EXPECT_EQ(firsts.size(), n.children.size()) << "siblings must differ in their first token";
      if (n.id > 0) {
        std::string expect;
        for (int32_t id : n.token_ids) expect += kPieces[id];
        EXPECT_EQ(n.text, expect);
      }
    }
    EXPECT_LT(t.unique_tokens(), flat[i].unique_tokens());
  }
}

TEST(TreePoShape, ForksEverySegmentWithinTheWidth) {
  RolloutSetup s = setup("treepo");
  s.config.segment_tokens = 3;
  s.config.branches = 2;
  s.config.max_width = 6;
  s.config.max_answer_tokens = 12;
  for (const Tree& t : grow(s, endless_script)) {
    EXPECT_EQ(t.leaf_ids().size(), 6u);
    for (const Node& n : t.nodes) {
      if (n.id == 0 || n.leaf) continue;
      EXPECT_EQ(n.children.size(), 2u);
      EXPECT_EQ(n.token_ids.size() % 3, 0u);
    }
    for (int32_t leaf : t.leaf_ids()) EXPECT_EQ(t.answer_ids(leaf).size(), 12u);
  }
}

TEST(FixedShape, NAryTreeOfSegmentsToDepthD) {
  RolloutSetup s = setup("fixed");
  s.config.segment_tokens = 2;
  s.config.branches = 3;
  s.config.max_depth = 3;
  s.config.max_answer_tokens = 9;
  for (const Tree& t : grow(s, endless_script)) {
    EXPECT_EQ(t.root().children.size(), 3u);
    EXPECT_EQ(t.max_depth(), 3);
    EXPECT_EQ(t.leaf_ids().size(), 27u);
    for (const Node& n : t.nodes) {
      if (n.id == 0) continue;
      if (n.depth < 3) {
        EXPECT_EQ(n.children.size(), 3u);
        EXPECT_EQ(n.token_ids.size(), 2u);
      } else {
        EXPECT_TRUE(n.leaf);
        EXPECT_EQ(n.token_ids.size(), 5u); // the deepest level runs to the answer cap
      }
    }
  }
}

} // namespace
} // namespace treerpo::rollout
