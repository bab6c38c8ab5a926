// `treerpo-train rollout`: grow trees for the first N training prompts, score and credit them,
// write trees.jsonl (and, with --view, a tree viewer of them). `treerpo-train bench rollout`:
// rollout speed and prefix sharing on a random-weight Qwen2 model.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "command.h"
#include "decode_options.h"
#include "treerpo/config/config.h"
#include "treerpo/eval/dataset.h"
#include "treerpo/rl/credit.h"
#include "treerpo/rollout/qwen2_branches.h"
#include "treerpo/rollout/sampler.h"
#include "treerpo/rollout/tree_json.h"
#include "treerpo/rollout/viewer.h"
#include "treerpo/tokenizer/byte_level_writer.h"
#include "treerpo/tokenizer/chat.h"
#include "treerpo/train/scoring.h"
#include "treerpo/util/cuda_syncs.h"
#include "treerpo/util/error.h"
#include "treerpo/util/log.h"

namespace treerpo::cli {

namespace {

using namespace treerpo::rollout;

torch::Device device_of(const std::string& name) {
  return torch::Device(name);
}
torch::Dtype dtype_of(const std::string& name) {
  return name == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
}

int64_t longest(const std::vector<PromptInput>& prompts) {
  size_t n = 0;
  for (const auto& p : prompts) n = std::max(n, p.prompt_ids.size());
  return static_cast<int64_t>(n);
}

void log_step(const RolloutStats& s) {
  if (s.step % 50 != 0) return;
  spdlog::info("step {}: trees {} nodes {} leaves {} depth {} live {} generated {} forwarded {} "
               "unique {} ({:.0f} tok/s)",
               s.step, s.trees, s.nodes, s.leaves, s.max_depth, s.live_branches, s.tokens_generated,
               s.tokens_forwarded, s.unique_tree_tokens, s.tokens_per_s());
}

void run_rollout(const std::string& config_path, const std::vector<std::string>& sets,
                 const std::string& out_path, int64_t prompt_count, const std::string& view_dir) {
  const Config config = load_config(config_path, sets);
  const std::string tok_path =
      config.model.tokenizer.empty() ? config.model.path : config.model.tokenizer;
  auto tok = tokenizer::Tokenizer::load(tok_path);
  auto problems =
      eval::load_problems(config.data.train, config.data.question_field, config.data.answer_field);
  if (prompt_count > 0 && static_cast<size_t>(prompt_count) < problems.size()) {
    problems.resize(prompt_count);
  }
  std::vector<PromptInput> prompts;
  for (const auto& p : problems) {
    prompts.push_back(
        {p.question, p.answer,
         tok->encode(tokenizer::qwen_math_prompt(p.question, config.data.system_prompt))});
  }
  const auto device = device_of(config.model.device);
  const auto dtype = dtype_of(config.model.dtype);
  auto model = model::Qwen2::load(config.model.path, dtype, device);
  Qwen2Branches branches(model, config.rollout.max_live_branches,
                         kv_pool_tokens_on(config.rollout, longest(prompts), model.config(), dtype,
                                           device, config.model.memory_gb),
                         config.rollout.kv_block_tokens, dtype, device,
                         model::decode_attention_from_name(config.rollout.decode_attention),
                         decode_shapes_of(config.rollout),
                         longest(prompts) + config.rollout.max_answer_tokens + 1);
  RolloutSetup setup{config.rollout, tok->eos_ids(), static_cast<uint64_t>(config.train.seed)};
  RolloutStats stats;
  auto trees = grow_trees(branches, tokenizer_streams(*tok), setup, prompts, log_step, &stats);
  std::ofstream out(out_path);
  if (!out) throw bad_input("cannot write " + out_path, "--out", "check the folder exists");
  // Leaf rewards from the checker, then the run's credit (the training loop's scoring).
  train::score_trees(trees, config);
  for (const Tree& t : trees) out << tree_to_json(t, *tok).dump() << "\n";
  // The untrained policy's trees are the viewer's step 0.
  if (!view_dir.empty()) {
    write_logged_step(view_dir, 0, trees, *tok);
    spdlog::info("tree viewer: {}", (std::filesystem::path(view_dir) / "index.html").string());
  }
  spdlog::info("{} trees, {} nodes, {} leaves, {} tokens in {:.1f}s ({:.0f} tok/s) -> {}",
               stats.trees, stats.nodes, stats.leaves, stats.tokens_generated, stats.seconds,
               stats.tokens_per_s(), out_path);
  spdlog::info(
      "KV held at the peak: {} positions for {} distinct tree tokens ({:.3f}), blocks of {}",
      stats.kv_tokens_held_peak, stats.kv_unique_tokens_at_peak,
      stats.kv_unique_tokens_at_peak > 0
          ? static_cast<double>(stats.kv_tokens_held_peak) / stats.kv_unique_tokens_at_peak
          : 0.0,
      config.rollout.kv_block_tokens);
}

struct BenchOptions {
  std::string shape = "tiny"; // tiny | qwen2.5-math-1.5b
  std::string algorithm = "treerpo", device = "cpu", dtype = "float32";
  int64_t prompts = 8, prompt_tokens = 64, slots = 64, samples = 8;
  int64_t kv_cache_tokens = 0, block_tokens = 16, dense_slots = 0;
  std::string decode_attention = "paged_kernel"; // torch | paged_kernel
  std::string decode_shapes = "dynamic";         // dynamic | fixed | cuda_graphs
  int64_t min_segment_tokens = 32, max_answer_tokens = 256;
  int64_t repeats = 1;
  uint64_t seed = 1;
};

// What serving-engine rollout with one request per node forwards on the same trees: each node
// prefills its whole context, then feeds its own tokens but the last.
int64_t per_node_reprefill(const Tree& t) {
  int64_t total = 0;
  for (const Node& n : t.nodes) {
    if (n.id == 0) continue;
    total += static_cast<int64_t>(t.context_ids(n.id).size() + n.token_ids.size()) - 1;
  }
  return total;
}

// Every tree of `a` has the nodes of `b` with the same tokens (the float log-probs aside).
bool same_tokens(const std::vector<Tree>& a, const std::vector<Tree>& b) {
  if (a.size() != b.size()) return false;
  for (size_t t = 0; t < a.size(); ++t) {
    if (a[t].nodes.size() != b[t].nodes.size()) return false;
    for (size_t i = 0; i < a[t].nodes.size(); ++i) {
      if (a[t].nodes[i].token_ids != b[t].nodes[i].token_ids ||
          a[t].nodes[i].parent != b[t].nodes[i].parent)
        return false;
    }
  }
  return true;
}

// The seconds of each engine's rounds (bench rollout --repeats): every engine grows the same trees
// once a round, the engines in turn, so a drift of the machine's speed reaches them alike; each
// reports its median round.
struct Rounds {
  std::vector<double> seconds;
  double median() const {
    std::vector<double> v = seconds;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n == 0 ? 0.0 : n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  }
  // The round's stats with the median seconds, so tokens_per_s() is the median round's speed.
  RolloutStats apply(RolloutStats s) const {
    s.seconds = median();
    return s;
  }
};

// LibTorch's CUDA synchronisations while it lives (util/cuda_syncs.h), per decode step: the ground
// truth beside host_syncs_per_decode_step, the rollout's own count of its transfers. Null off CUDA.
class CudaSyncsPerStep {
public:
  explicit CudaSyncsPerStep(const torch::Device& device) {
    if (device.is_cuda()) counter_.emplace();
  }
  nlohmann::json per(int64_t steps) const {
    if (!counter_) return nullptr;
    return steps > 0 ? static_cast<double>(counter_->count()) / static_cast<double>(steps) : 0.0;
  }

private:
  std::optional<CudaSyncCounter> counter_;
};

void run_bench(const BenchOptions& o) {
  if (o.repeats < 1)
    throw bad_input("--repeats must be at least 1", "bench rollout", "use e.g. --repeats 5");
  // A byte-level tokenizer gives the random model's ids real text (bytes), delimiters included.
  const auto dir = std::filesystem::temp_directory_path() / "treerpo-bench-rollout-tokenizer";
  tokenizer::write_byte_level_tokenizer(dir.string(), {}, {});
  auto tok = tokenizer::Tokenizer::load(dir.string());
  const auto device = device_of(o.device);
  const auto dtype = dtype_of(o.dtype);
  auto model = model::Qwen2::random(model::Qwen2Config::builtin(o.shape, "bench rollout --shape"),
                                    o.seed, dtype, device);
  std::vector<PromptInput> prompts;
  Rng rng(o.seed);
  for (int64_t p = 0; p < o.prompts; ++p) {
    PromptInput in{"random", "0", {}};
    for (int64_t i = 0; i < o.prompt_tokens; ++i) in.prompt_ids.push_back(32 + rng.next() % 95);
    prompts.push_back(std::move(in));
  }
  RolloutSetup setup;
  setup.config.algorithm = o.algorithm;
  setup.config.samples = o.samples;
  setup.config.min_segment_tokens = o.min_segment_tokens;
  // The default a config file gets (config/derived.cpp): the seed's coverage length X > L_min.
  setup.config.coverage_min_tokens = o.min_segment_tokens + 1;
  setup.config.max_answer_tokens = o.max_answer_tokens;
  setup.config.max_node_tokens = o.max_answer_tokens;
  setup.eos_ids = tok->eos_ids();
  setup.seed = o.seed;
  const int64_t context = o.prompt_tokens + o.max_answer_tokens + 1;
  setup.config.max_live_branches = o.slots;
  setup.config.kv_cache_tokens = o.kv_cache_tokens;
  setup.config.kv_block_tokens = o.block_tokens;
  setup.config.decode_attention = o.decode_attention;
  const model::DecodeAttention attention =
      parse_decode_attention(o.decode_attention, "bench rollout ");
  const DecodeShapes shapes =
      parse_decode_shapes(o.decode_shapes, attention, device, "bench rollout ");
  const int64_t pool_tokens = kv_pool_tokens(setup.config, o.prompt_tokens);
  Qwen2Branches branches(model, o.slots, pool_tokens, o.block_tokens, dtype, device, attention,
                         shapes, context);
  // One untimed tree first: the process's first rollout also pays for thread pools, the allocator's
  // first blocks and the BLAS set-up, which would otherwise count against whichever engine runs
  // first.
  if (!prompts.empty())
    grow_trees(branches, tokenizer_streams(*tok), setup, {prompts.front()}, {}, nullptr);
  // One side: its trees, stats and CUDA synchronisations from the first round, seconds from all.
  struct Side {
    std::vector<Tree> trees;
    RolloutStats stats;
    nlohmann::json cuda_syncs;
    Rounds rounds;
  };
  auto grow = [&](BranchModel& engine, Side& side) {
    RolloutStats st;
    CudaSyncsPerStep syncs(device);
    std::vector<Tree> grown = grow_trees(engine, tokenizer_streams(*tok), setup, prompts, {}, &st);
    if (side.rounds.seconds.empty()) {
      side.trees = std::move(grown);
      side.stats = st;
      side.cuda_syncs = syncs.per(st.step);
    }
    side.rounds.seconds.push_back(st.seconds);
  };
  // The engines beside the measured one run after it in each round, each built for its run and
  // freed after it, so that no other engine's memory is live but the measured one's (an engine
  // kept for the next round changed the dense one's speed by a third, through the allocator).
  const bool beside_dynamic = shapes != DecodeShapes::Dynamic;
  const bool beside_gather = attention == model::DecodeAttention::PagedKernel;
  const int64_t dense_slots = o.dense_slots > 0 ? o.dense_slots : 4 * o.slots;
  Side main_side, dynamic_side, gather_side, dense_side;
  int64_t dense_allocated = 0;
  std::string dense_failed;
  for (int64_t round = 0; round < o.repeats; ++round) {
    grow(branches, main_side);
    if (beside_dynamic) {
      Qwen2Branches dynamic(model, o.slots, pool_tokens, o.block_tokens, dtype, device, attention);
      grow(dynamic, dynamic_side);
    }
    if (beside_gather) {
      Qwen2Branches gather(model, o.slots, pool_tokens, o.block_tokens, dtype, device,
                           model::DecodeAttention::Torch);
      grow(gather, gather_side);
    }
    if (o.dense_slots >= 0 && dense_failed.empty()) {
      Qwen2DenseBranches dense(model, o.slots, dense_slots, context, dtype, device);
      dense_allocated = dense.kv_tokens_allocated();
      try {
        grow(dense, dense_side);
      } catch (const Error& e) {
        dense_failed = e.what();
      }
    }
  }
  const RolloutStats s = main_side.rounds.apply(main_side.stats);
  const std::vector<Tree>& trees = main_side.trees;
  int64_t reprefill = 0;
  for (const Tree& t : trees) reprefill += per_node_reprefill(t);
  const int64_t needed = s.unique_tree_tokens - s.leaves;
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  nlohmann::json j = {
      {"bench", "rollout"},
      {"shape", o.shape},
      {"device", o.device},
      {"dtype", o.dtype},
      {"cpu_threads", at::get_num_threads()},
      {"algorithm", o.algorithm},
      {"prompts", o.prompts},
      {"slots", o.slots},
      {"kv_cache_tokens", branches.cache().total_blocks() * o.block_tokens},
      {"kv_block_tokens", o.block_tokens},
      {"decode_attention", model::decode_attention_name(attention)},
      {"repeats", o.repeats},
      {"steps", s.step},
      {"trees", s.trees},
      {"nodes", s.nodes},
      {"leaves", s.leaves},
      {"max_depth", s.max_depth},
      {"tokens_generated", s.tokens_generated},
      {"tokens_forwarded", s.tokens_forwarded},
      {"unique_tree_tokens", s.unique_tree_tokens},
      {"leaf_final_tokens", s.leaves},
      {"forwarded_per_needed_token", ratio(s.tokens_forwarded, needed)},
      {"forwarded_per_unique_token", ratio(s.tokens_forwarded, s.unique_tree_tokens)},
      {"kv_tokens_held_peak", s.kv_tokens_held_peak},
      {"kv_unique_tokens_at_peak", s.kv_unique_tokens_at_peak},
      {"kv_held_per_unique_token", ratio(s.kv_tokens_held_peak, s.kv_unique_tokens_at_peak)},
      {"branch_waits", s.branch_waits},
      {"preemptions", s.preemptions},
      {"host_syncs_per_decode_step", ratio(s.host_transfers, s.step)},
      {"cuda_syncs_per_decode_step", main_side.cuda_syncs},
      {"per_node_reprefill_tokens", reprefill},
      {"reprefill_per_needed_token", ratio(reprefill, needed)},
      {"mean_live_branches", ratio(s.tokens_generated, std::max<int64_t>(1, s.step))},
      {"seconds", s.seconds},
      {"seconds_rounds", main_side.rounds.seconds},
      {"tokens_per_s", s.tokens_per_s()},
      {"branches_per_s", s.seconds > 0 ? s.nodes / s.seconds : 0.0}};

  // Fixed shapes (or their CUDA graphs) against steps of their own shapes, same run: the same
  // tokens in every tree, and the speed.
  if (beside_dynamic) {
    const RolloutStats d = dynamic_side.rounds.apply(dynamic_side.stats);
    j["decode_shapes"] = o.decode_shapes;
    j["graphs_captured"] = branches.graphs();
    j["dynamic_shapes"] = {{"tokens_per_s", d.tokens_per_s()},
                           {"seconds", d.seconds},
                           {"seconds_rounds", dynamic_side.rounds.seconds},
                           {"cuda_syncs_per_decode_step", dynamic_side.cuda_syncs},
                           {"same_trees", same_tokens(trees, dynamic_side.trees)}};
    j["fixed_over_dynamic_tokens_per_s"] = ratio(s.tokens_per_s(), d.tokens_per_s());
  }

  // The kernel against the LibTorch path (each sequence's blocks gathered for SDPA), same run.
  if (beside_gather) {
    const RolloutStats g = gather_side.rounds.apply(gather_side.stats);
    j["torch_gather"] = {{"tokens_per_s", g.tokens_per_s()},
                         {"seconds", g.seconds},
                         {"seconds_rounds", gather_side.rounds.seconds},
                         {"cuda_syncs_per_decode_step", gather_side.cuda_syncs},
                         {"same_tokens_generated", g.tokens_generated == s.tokens_generated}};
    j["paged_kernel_over_torch_gather_tokens_per_s"] = ratio(s.tokens_per_s(), g.tokens_per_s());
  }

  // The dense slot cache the paged one replaced, on the same prompts and seed, in the same run.
  if (o.dense_slots >= 0) {
    nlohmann::json dj = {{"slots", dense_slots}, {"kv_tokens_allocated", dense_allocated}};
    if (!dense_failed.empty()) {
      dj["failed"] = dense_failed;
    } else {
      const RolloutStats d = dense_side.rounds.apply(dense_side.stats);
      dj["tokens_per_s"] = d.tokens_per_s();
      dj["seconds"] = d.seconds;
      dj["seconds_rounds"] = dense_side.rounds.seconds;
      dj["kv_tokens_held_peak"] = d.kv_tokens_held_peak;
      dj["same_tokens_generated"] = d.tokens_generated == s.tokens_generated;
      j["paged_over_dense_tokens_per_s"] = ratio(s.tokens_per_s(), d.tokens_per_s());
      j["paged_over_dense_kv_held_peak"] = ratio(s.kv_tokens_held_peak, d.kv_tokens_held_peak);
    }
    j["dense"] = dj;
  }
  std::printf("%s\n", j.dump().c_str());
}

} // namespace

void add_rollout_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("rollout", "Grow, score and credit trees for the first N prompts");
  static std::string config_path, out_path = "trees.jsonl", view_dir;
  static std::vector<std::string> sets;
  static int64_t prompts = 8;
  cmd->add_option("--config", config_path, "YAML config")->required();
  cmd->add_option("--out", out_path, "trees.jsonl to write (one tree per line)");
  cmd->add_option("--prompts", prompts, "first N prompts of data.train (0 = all)");
  cmd->add_option("--set", sets, "override a config key: section.key=value");
  cmd->add_option(
      "--view", view_dir,
      "also write a tree viewer of these trees into this folder (index.html, as step 0)");
  cmd->callback([] { run_rollout(config_path, sets, out_path, prompts, view_dir); });

  static BenchOptions o;
  auto* b = bench_subcommand(app)->add_subcommand("rollout", "Rollout speed on a random Qwen2");
  b->add_option("--shape", o.shape, "tiny | qwen2.5-math-1.5b");
  b->add_option("--algorithm", o.algorithm, "treerpo | grpo | tempo | treepo | fixed");
  b->add_option("--device", o.device, "cpu | cuda");
  b->add_option("--dtype", o.dtype, "float32 | bfloat16");
  b->add_option("--prompts", o.prompts, "trees to grow");
  b->add_option("--prompt-tokens", o.prompt_tokens, "random prompt length");
  b->add_option("--slots", o.slots, "most branches decoded together (rollout.max_live_branches)");
  b->add_option("--kv-cache-tokens", o.kv_cache_tokens,
                "paged KV pool in tokens (0: slots x (prompt + answer + 1))");
  b->add_option("--block-tokens", o.block_tokens, "paged KV block size");
  b->add_option("--decode-attention", o.decode_attention,
                "torch | paged_kernel (default; the torch path then runs beside it)");
  b->add_option("--decode-shapes", o.decode_shapes,
                "dynamic (default) | fixed | cuda_graphs (padded to batch buckets, eager or "
                "replayed as CUDA graphs; dynamic steps then run beside it)");
  b->add_option("--dense-slots", o.dense_slots,
                "slots of the dense baseline run beside it (0: 4 x --slots; -1: no baseline)");
  b->add_option("--samples", o.samples, "grpo / tempo samples per prompt");
  b->add_option("--min-segment-tokens", o.min_segment_tokens, "treerpo L_min");
  b->add_option("--max-answer-tokens", o.max_answer_tokens, "answer cap");
  b->add_option("--repeats", o.repeats,
                "rounds: each engine grows the trees once a round, in turn; each reports its "
                "median round's seconds and tokens/s");
  b->add_option("--seed", o.seed, "seed of weights, prompts and sampling");
  b->callback([] { run_bench(o); });
}

} // namespace treerpo::cli
