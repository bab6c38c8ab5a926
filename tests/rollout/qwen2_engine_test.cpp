// The engine on a real (tiny, random) Qwen2: prefix sharing forwards each tree token once, trees
// depend only on the seed, and the log-probs recorded while sampling equal the packed training
// forward's (ratio 1).
#include <filesystem>
#include <unistd.h>

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
#include "treerpo/util/error.h"

#include "../common/syncing_ops.h"

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

// The KV storage a rollout runs on: the paged cache (pool in tokens, block size), or the dense
// slot cache of earlier versions.
struct Storage {
  int64_t kv_tokens = 0; // 0: max_live_branches x 136 tokens
  int64_t block_tokens = 16;
  bool dense = false;
  model::DecodeAttention attention = model::DecodeAttention::Torch;
  rollout::DecodeShapes shapes = rollout::DecodeShapes::Dynamic;
};

RolloutConfig tiny_rollout(const std::string& algorithm = "treerpo") {
  RolloutConfig cfg;
  cfg.algorithm = algorithm;
  cfg.min_segment_tokens = 3;
  cfg.coverage_min_tokens = 4;
  cfg.entropy_threshold = 0.5; // a random model is uncertain: splits happen at every delimiter
  // Many one-byte delimiters, so a random model's byte soup meets the delimiter gate often.
  cfg.delimiters.clear();
  for (char c = '!'; c <= '~'; c += 2) cfg.delimiters.emplace_back(1, c);
  cfg.max_depth = 3;
  cfg.max_node_tokens = 16;
  cfg.max_answer_tokens = 40;
  cfg.temperature = 1.0;
  cfg.max_live_branches = 128;
  cfg.samples = 4;
  cfg.segment_tokens = 8;
  cfg.branches = 2;
  cfg.max_width = 6;
  return cfg;
}

// Grows the trees of the prompts [first, first + count) of the questions below.
std::vector<rollout::Tree> grow(uint64_t seed, rollout::RolloutStats* stats, size_t first = 0,
                                size_t count = 2, const RolloutConfig& cfg = tiny_rollout(),
                                const Storage& storage = {}) {
  TinySetup& t = tiny();
  std::vector<rollout::PromptInput> prompts;
  const std::vector<const char*> questions = {"1+1?", "Two and three?", "Four?", "Five and six?"};
  for (size_t i = first; i < first + count; ++i) {
    const char* q = questions[i];
    prompts.push_back({q, "#### 2", t.tok->encode(tokenizer::qwen_math_prompt(q, "Solve."))});
  }
  const int64_t context = 96 + cfg.max_answer_tokens;
  std::unique_ptr<rollout::BranchModel> branches;
  if (storage.dense) {
    branches = std::make_unique<rollout::Qwen2DenseBranches>(*t.model, cfg.max_live_branches,
                                                             4 * cfg.max_live_branches, context,
                                                             torch::kFloat32, torch::kCPU);
  } else {
    const int64_t pool =
        storage.kv_tokens > 0 ? storage.kv_tokens : cfg.max_live_branches * context;
    branches = std::make_unique<rollout::Qwen2Branches>(
        *t.model, cfg.max_live_branches, pool, storage.block_tokens, torch::kFloat32, torch::kCPU,
        storage.attention, storage.shapes, context);
  }
  rollout::RolloutSetup setup{cfg, t.tok->eos_ids(), seed, static_cast<int64_t>(first)};
  return rollout::grow_trees(*branches, rollout::tokenizer_streams(*t.tok), setup, prompts, {},
                             stats);
}

// The same tokens, shape and origins; the floats within the batched forward's rounding (batches
// of other rows round differently in the last bits).
void expect_same_trees(const std::vector<rollout::Tree>& a, const std::vector<rollout::Tree>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t t = 0; t < a.size(); ++t) {
    ASSERT_EQ(a[t].nodes.size(), b[t].nodes.size()) << "tree " << t;
    for (size_t i = 0; i < a[t].nodes.size(); ++i) {
      const rollout::Node &x = a[t].nodes[i], &y = b[t].nodes[i];
      EXPECT_EQ(x.parent, y.parent);
      EXPECT_EQ(x.origin, y.origin);
      EXPECT_EQ(x.token_ids, y.token_ids) << "tree " << t << " node " << i;
      ASSERT_EQ(x.logprobs.size(), y.logprobs.size());
      for (size_t k = 0; k < x.logprobs.size(); ++k) {
        EXPECT_NEAR(x.logprobs[k], y.logprobs[k], 1e-5);
      }
      EXPECT_EQ(x.split_entropy.has_value(), y.split_entropy.has_value());
      if (x.split_entropy) {
        EXPECT_NEAR(*x.split_entropy, *y.split_entropy, 1e-5);
      }
    }
  }
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
  ASSERT_EQ(alone.size(), 1u);
  expect_same_trees(alone, {batch[1]});
  // A tree that branched, so the comparison is not of two bare roots.
  EXPECT_GT(batch[1].nodes.size(), 2u);
}

// Every shape grows the same trees over the paged cache as over the dense slots it replaces.
TEST(Qwen2Engine, PagedAndDenseCachesGrowTheSameTrees) {
  for (const std::string shape : {"treerpo", "grpo", "tempo", "treepo", "fixed"}) {
    SCOPED_TRACE(shape);
    RolloutConfig cfg = tiny_rollout(shape);
    rollout::RolloutStats paged_stats, dense_stats;
    const auto paged = grow(13, &paged_stats, 0, 3, cfg);
    const auto dense = grow(13, &dense_stats, 0, 3, cfg, Storage{0, 16, true});
    expect_same_trees(paged, dense);
    EXPECT_EQ(paged_stats.tokens_forwarded, dense_stats.tokens_forwarded);
    // Shared prefixes: the paged cache never holds more than the dense one's rows.
    EXPECT_LE(paged_stats.kv_unique_tokens_at_peak, dense_stats.kv_tokens_held_peak);
  }
}

TEST(Qwen2Engine, ReferenceCoverageGrowsTheSameTreesOverBothCaches) {
  RolloutConfig cfg = tiny_rollout();
  cfg.coverage = "reference";
  cfg.coverage_min_chars = 6;
  rollout::RolloutStats a, b;
  expect_same_trees(grow(17, &a, 0, 3, cfg), grow(17, &b, 0, 3, cfg, Storage{0, 16, true}));
}

// A pool far smaller than the trees: branches wait for blocks and the newest tree's branches are
// swapped out, and the trees are those a roomy pool grows.
TEST(Qwen2Engine, ASmallPoolWaitsAndPreemptsButGrowsTheSameTrees) {
  const RolloutConfig cfg = tiny_rollout();
  rollout::RolloutStats roomy_stats, small_stats;
  const auto roomy = grow(19, &roomy_stats, 0, 4, cfg);
  const auto small = grow(19, &small_stats, 0, 4, cfg, Storage{30 * 16, 16, false});
  expect_same_trees(roomy, small);
  EXPECT_EQ(roomy_stats.preemptions, 0);
  EXPECT_GT(small_stats.branch_waits, 0);
  EXPECT_GT(small_stats.preemptions, 0);
  EXPECT_LE(small_stats.kv_tokens_held_peak, 30 * 16);
  EXPECT_GT(small_stats.step, roomy_stats.step);
}

// With one-token blocks nothing is padded or copied: the positions held at the peak are exactly
// the distinct tree tokens the live sequences cover.
TEST(Qwen2Engine, OneTokenBlocksHoldEachResidentTreeTokenOnce) {
  rollout::RolloutStats stats;
  grow(23, &stats, 0, 3, tiny_rollout(), Storage{0, 1, false});
  EXPECT_GT(stats.kv_tokens_held_peak, 0);
  EXPECT_EQ(stats.kv_tokens_held_peak, stats.kv_unique_tokens_at_peak);
}

// Decode attention reading the blocks in place grows the trees the gather + SDPA path grows, for
// every shape, with blocks of 16 and of 5 tokens (forks inside blocks), and with a pool small
// enough to wait and preempt.
TEST(Qwen2Engine, PagedKernelAndTorchAttentionGrowTheSameTrees) {
  const auto kernel = model::DecodeAttention::PagedKernel;
  for (const std::string shape : {"treerpo", "grpo", "tempo", "treepo", "fixed"}) {
    SCOPED_TRACE(shape);
    const RolloutConfig cfg = tiny_rollout(shape);
    rollout::RolloutStats torch_stats, kernel_stats, odd_stats;
    const auto gathered = grow(13, &torch_stats, 0, 3, cfg);
    expect_same_trees(gathered, grow(13, &kernel_stats, 0, 3, cfg, Storage{0, 16, false, kernel}));
    expect_same_trees(gathered, grow(13, &odd_stats, 0, 3, cfg, Storage{0, 5, false, kernel}));
    EXPECT_EQ(kernel_stats.tokens_forwarded, torch_stats.tokens_forwarded);
  }
  rollout::RolloutStats small_stats;
  const RolloutConfig cfg = tiny_rollout();
  expect_same_trees(grow(19, nullptr, 0, 4, cfg),
                    grow(19, &small_stats, 0, 4, cfg, Storage{30 * 16, 16, false, kernel}));
  EXPECT_GT(small_stats.preemptions, 0);
}

// Decode steps padded to batch buckets (what rollout.cuda_graphs records, run eagerly here) grow
// the trees steps of their own shapes grow, for every shape, with a pool small enough to wait and
// preempt, and still with one host transfer per step.
TEST(Qwen2Engine, FixedShapeStepsGrowTheSameTrees) {
  const auto kernel = model::DecodeAttention::PagedKernel;
  const auto fixed = rollout::DecodeShapes::Fixed;
  for (const std::string shape : {"treerpo", "grpo", "tempo", "treepo", "fixed"}) {
    SCOPED_TRACE(shape);
    const RolloutConfig cfg = tiny_rollout(shape);
    rollout::RolloutStats dynamic_stats, fixed_stats;
    expect_same_trees(grow(13, &dynamic_stats, 0, 3, cfg, Storage{0, 16, false, kernel}),
                      grow(13, &fixed_stats, 0, 3, cfg, Storage{0, 16, false, kernel, fixed}));
    EXPECT_EQ(fixed_stats.tokens_forwarded, dynamic_stats.tokens_forwarded);
    EXPECT_EQ(fixed_stats.host_transfers, fixed_stats.step);
  }
  rollout::RolloutStats small_stats;
  const RolloutConfig cfg = tiny_rollout();
  expect_same_trees(grow(19, nullptr, 0, 4, cfg),
                    grow(19, &small_stats, 0, 4, cfg, Storage{30 * 16, 16, false, kernel, fixed}));
  EXPECT_GT(small_stats.preemptions, 0);
}

// One device-to-host transfer per step: the sampled ids with what the host decides on, and (top-k
// on) every row's distribution, so a split that parks its distribution (seed coverage) adds none.
TEST(Qwen2Engine, OneHostTransferPerStepWithOrWithoutParkedSplits) {
  for (const std::string coverage : {"off", "seed"}) {
    SCOPED_TRACE(coverage);
    RolloutConfig cfg = tiny_rollout();
    cfg.coverage = coverage;
    rollout::RolloutStats stats;
    const auto trees = grow(29, &stats, 0, 2, cfg);
    EXPECT_EQ(stats.host_transfers, stats.step);
    int64_t coverage_nodes = 0;
    for (const auto& tree : trees) {
      for (const auto& node : tree.nodes) {
        coverage_nodes += node.origin == rollout::NodeOrigin::Coverage;
      }
    }
    // Seed coverage parked its splits and drew siblings from their distributions.
    EXPECT_EQ(coverage_nodes > 0, coverage == "seed");
  }
}

// rollout.kv_cache_memory_fraction: the pool is that fraction of the free bytes in whole blocks.
// The tiny model's token: keys and values x 2 layers x 2 KV heads x head_dim 8 x 4 bytes = 256.
// Half of 1,000,000 bytes is 1,953 tokens of 256 bytes: 122 blocks of 16, 1,952 tokens.
TEST(Qwen2Engine, AMemoryFractionSizesThePoolInWholeBlocks) {
  const model::Qwen2Config& shape = tiny().model->config();
  EXPECT_EQ(rollout::kv_bytes_per_token(shape, torch::kFloat32), 256);
  EXPECT_EQ(rollout::kv_bytes_per_token(shape, torch::kBFloat16), 128);
  RolloutConfig cfg = tiny_rollout();
  cfg.kv_block_tokens = 16;
  cfg.kv_cache_memory_fraction = 0.5;
  EXPECT_EQ(rollout::kv_pool_tokens(cfg, 50, 256, 1000000), 1952);
  // Half of 100 tokens' bytes is 3 blocks, 48 tokens: less than one answer (40) and a block (16),
  // a runtime failure naming the key.
  try {
    rollout::kv_pool_tokens(cfg, 50, 256, 100 * 256);
    ADD_FAILURE() << "a pool of 48 tokens was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 1);
    EXPECT_NE(std::string(e.what()).find("would hold 48 tokens"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rollout.kv_cache_memory_fraction"), std::string::npos);
  }
  // kv_cache_tokens, then the dense size, win without reading memory.
  cfg.kv_cache_memory_fraction = 0;
  EXPECT_EQ(rollout::kv_pool_tokens(cfg, 50), 128 * (50 + 40 + 1));
  cfg.kv_cache_tokens = 4096;
  EXPECT_EQ(rollout::kv_pool_tokens_on(cfg, 50, shape, torch::kFloat32, torch::kCPU, 0), 4096);
}

// On the CPU the free memory is the host's: a fraction of it is at most that fraction of the
// machine's physical memory (what size of pool grows the same trees: the tests above).
TEST(Qwen2Engine, AMemoryFractionOnTheCpuTakesPartOfTheHostsMemory) {
  const model::Qwen2Config& shape = tiny().model->config();
  RolloutConfig cfg = tiny_rollout();
  cfg.kv_cache_memory_fraction = 1e-4;
  const int64_t pool = rollout::kv_pool_tokens_on(cfg, 50, shape, torch::kFloat32, torch::kCPU, 0);
  const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  EXPECT_GE(pool, cfg.max_answer_tokens + cfg.kv_block_tokens);
  EXPECT_LE(static_cast<double>(pool) * 256, 1e-4 * physical);
  EXPECT_EQ(pool % cfg.kv_block_tokens, 0);
}

// No operator of a rollout would make the host wait for a CUDA device (tests/common/
// syncing_ops.h): the one synchronisation of a decode step is its counted transfer
// (OneHostTransferPerStep... above). Every tree shape and eval's sampling, each decode path (the
// gather, the paged kernel's, fixed-shape steps as CUDA graphs record them) and a pool small
// enough to preempt.
TEST(Qwen2Engine, NoOperatorOfARolloutWaitsForTheDevice) {
  {
    // The recorder sees what it is meant to, each wait once: an .item() (aten::item around
    // _local_scalar_dense), the nonzero inside a mask index, and a bool() (is_nonzero around
    // item around _local_scalar_dense).
    treerpo::testing::SyncingOpRecorder control;
    torch::Tensor x = torch::arange(4, torch::kFloat32);
    EXPECT_EQ(x.sum().item<float>(), 6.0f);
    EXPECT_EQ(x.index({x > 1}).size(0), 2);
    EXPECT_TRUE(x.sum().is_nonzero());
    const std::map<std::string, int64_t> expected = {
        {"aten::item", 1}, {"aten::nonzero", 1}, {"aten::is_nonzero", 1}};
    EXPECT_EQ(control.calls(), expected);
    EXPECT_EQ(control.total(), 3);
  }
  const auto kernel = model::DecodeAttention::PagedKernel;
  const auto fixed = rollout::DecodeShapes::Fixed;
  const std::vector<std::pair<std::string, Storage>> paths = {
      {"torch gather", Storage{0, 16, false}},
      {"paged kernel", Storage{0, 16, false, kernel}},
      {"fixed shapes", Storage{0, 16, false, kernel, fixed}},
      {"small pool", Storage{30 * 16, 16, false, kernel, fixed}}};
  std::vector<std::pair<std::string, RolloutConfig>> configs;
  for (const std::string shape : {"treerpo", "grpo", "tempo", "treepo", "fixed"}) {
    configs.emplace_back(shape, tiny_rollout(shape));
  }
  // What `eval` samples with (eval/evaluate.cpp): greedy, and maj@k's top-p without top-k.
  for (const double temperature : {0.0, 0.7}) {
    RolloutConfig c = tiny_rollout("grpo");
    c.samples = temperature == 0.0 ? 1 : 4;
    c.temperature = temperature;
    c.top_p = temperature == 0.0 ? 1.0 : 0.95;
    c.top_k = 0;
    c.repetition_penalty = 1.0;
    configs.emplace_back(temperature == 0.0 ? "eval greedy" : "eval maj", c);
  }
  for (const auto& [shape, config] : configs) {
    for (const auto& [path, storage] : paths) {
      SCOPED_TRACE(shape + ", " + path);
      rollout::RolloutStats stats;
      treerpo::testing::SyncingOpRecorder recorder;
      grow(19, &stats, 0, path == "small pool" ? 4 : 2, config, storage);
      EXPECT_GT(stats.step, 0);
      std::string seen;
      for (const auto& [name, calls] : recorder.calls())
        seen += " " + name + " x" + std::to_string(calls);
      EXPECT_EQ(recorder.total(), 0) << seen;
      if (path == "small pool" && shape == "treerpo") {
        EXPECT_GT(stats.preemptions, 0);
      }
    }
  }
}
