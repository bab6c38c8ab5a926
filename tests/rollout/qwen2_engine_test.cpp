// The engine on a real (tiny, random) Qwen2: prefix sharing forwards each tree token once, trees
// depend only on the seed, and the log-probs recorded while sampling equal the packed training
// forward's (ratio 1).
#include <filesystem>

#include <gtest/gtest.h>

#include "treerpo/model/qwen2.h"
#include "treerpo/rl/credit.h"
#include "treerpo/rl/pack.h"
#include "treerpo/rollout/engine.h"
#include "treerpo/rollout/qwen2_branches.h"
#include "treerpo/rollout/tree_json.h"
#include "treerpo/tokenizer/byte_level_writer.h"
#include "treerpo/tokenizer/chat.h"
#include "treerpo/tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using namespace treerpo;

namespace {

struct TinySetup {
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::unique_ptr<model::Qwen2> model;
};

TinySetup& tiny() {
  static TinySetup s = [] {
    fs::path dir = fs::temp_directory_path() / ("treerpo_qwen2_engine_" + std::to_string(getpid()));
    tokenizer::write_byte_level_tokenizer(dir.string(), {}, {"<|im_start|>"});
    TinySetup t;
    t.tok = tokenizer::Tokenizer::load(dir.string());
    model::Qwen2Config cfg;
    cfg.vocab_size = t.tok->vocab_size();
    cfg.hidden_size = 32;
    cfg.intermediate_size = 64;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 4;
    cfg.num_key_value_heads = 2;
    cfg.tie_word_embeddings = true;
    t.model =
        std::make_unique<model::Qwen2>(model::Qwen2::random(cfg, 3, torch::kFloat32, torch::kCPU));
    return t;
  }();
  return s;
}

// Grows the trees of the prompts [first, first + count) of the two questions below.
std::vector<rollout::Tree> grow(uint64_t seed, rollout::RolloutStats* stats, size_t first = 0,
                                size_t count = 2) {
  TinySetup& t = tiny();
  RolloutConfig cfg;
  cfg.min_segment_tokens = 3;
  cfg.entropy_threshold = 0.5; // a random model is uncertain: splits happen at every delimiter
  // Many one-byte delimiters, so a random model's byte soup meets the delimiter gate often.
  cfg.delimiters.clear();
  for (char c = '!'; c <= '~'; c += 2) cfg.delimiters.emplace_back(1, c);
  cfg.max_depth = 3;
  cfg.max_node_tokens = 16;
  cfg.max_answer_tokens = 40;
  cfg.temperature = 1.0;
  cfg.max_live_branches = 128;
  std::vector<rollout::PromptInput> prompts;
  const std::vector<const char*> questions = {"1+1?", "Two and three?"};
  for (size_t i = first; i < first + count; ++i) {
    const char* q = questions[i];
    prompts.push_back({q, "#### 2", t.tok->encode(tokenizer::qwen_math_prompt(q, "Solve."))});
  }
  rollout::Qwen2Branches branches(*t.model, cfg.max_live_branches, 96 + cfg.max_answer_tokens,
                                  torch::kFloat32, torch::kCPU);
  rollout::RolloutSetup setup{cfg, t.tok->eos_ids(), seed, static_cast<int64_t>(first)};
  return rollout::grow_trees(branches, rollout::tokenizer_streams(*t.tok), setup, prompts, {},
                             stats);
}

} // namespace

TEST(Qwen2Engine, EveryTreeTokenIsForwardedOnce) {
  rollout::RolloutStats stats;
  auto trees = grow(11, &stats);
  int64_t unique = 0, leaves = 0, nodes = 0;
  for (const auto& t : trees) {
    unique += t.unique_tokens();
    leaves += static_cast<int64_t>(t.leaf_ids().size());
    nodes += static_cast<int64_t>(t.nodes.size());
  }
  EXPECT_GT(nodes, 2 * 3); // beyond the forced root split: the gates fired
  EXPECT_EQ(stats.unique_tree_tokens, unique);
  // A leaf's last token is never fed back; every other token is forwarded exactly once.
  EXPECT_EQ(stats.tokens_forwarded, unique - leaves);
}

TEST(Qwen2Engine, SameSeedSameTrees) {
  rollout::RolloutStats a_stats, b_stats;
  auto a = grow(5, &a_stats), b = grow(5, &b_stats);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(rollout::tree_to_json(a[i], *tiny().tok), rollout::tree_to_json(b[i], *tiny().tok));
  }
}

TEST(Qwen2Engine, SamplingLogprobsEqualThePackedTrainingForward) {
  rollout::RolloutStats stats;
  auto trees = grow(7, &stats);
  for (auto& tree : trees) {
    // Unscored leaves (reward 0) give zero credit; only the log-probs matter here.
    const auto credit = rl::assign_credit(tree, {});
    rl::PackedBatch packed = rl::pack_tree(tree, credit, rl::CreditRule::TreeRpo);
    torch::Tensor fresh = tiny().model->tree_logprobs(packed.tree).detach();
    for (int64_t i = packed.prompt_tokens; i < packed.size(); ++i) {
      EXPECT_NEAR(fresh[i].item<float>(), packed.old_logprobs[static_cast<size_t>(i)], 2e-4) << i;
    }
  }
}

TEST(Qwen2Engine, APromptGrowsTheSameTreeAloneAsAtItsIndexInTheBatch) {
  // What a data-parallel rank relies on: the second prompt grown alone with first_tree = 1 is the
  // tree the whole batch grows for it (its draws derive from its index, not its place in the call).
  rollout::RolloutStats stats;
  const auto batch = grow(11, &stats);
  const auto alone = grow(11, &stats, 1, 1);
  // The same tokens, shape and origins; the floats within the batched forward's rounding (a batch
  // of one row and of several rows round differently in the last bits).
  ASSERT_EQ(alone.size(), 1u);
  const rollout::Tree &a = alone[0], &b = batch[1];
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const rollout::Node &x = a.nodes[i], &y = b.nodes[i];
    EXPECT_EQ(x.parent, y.parent);
    EXPECT_EQ(x.origin, y.origin);
    EXPECT_EQ(x.token_ids, y.token_ids);
    ASSERT_EQ(x.logprobs.size(), y.logprobs.size());
    for (size_t t = 0; t < x.logprobs.size(); ++t) EXPECT_NEAR(x.logprobs[t], y.logprobs[t], 1e-5);
    EXPECT_EQ(x.split_entropy.has_value(), y.split_entropy.has_value());
    if (x.split_entropy) {
      EXPECT_NEAR(*x.split_entropy, *y.split_entropy, 1e-5);
    }
  }
  // A tree that branched, so the comparison is not of two bare roots.
  EXPECT_GT(batch[1].nodes.size(), 2u);
}
