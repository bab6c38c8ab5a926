// The RL loop: grow trees with the current policy, score leaves, assign credit, one packed forward
// per tree, clipped loss, AdamW. One process, one copy of the weights: the policy that samples is
// the one that trains.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "treerpo/dist/world.h"
#include "treerpo/eval/dataset.h"
#include "treerpo/eval/evaluate.h"
#include "treerpo/rl/credit.h"
#include "treerpo/rl/loss.h"
#include "treerpo/rl/pack.h"
#include "treerpo/rollout/qwen2_branches.h"
#include "treerpo/rollout/tree_json.h"
#include "treerpo/rollout/viewer.h"
#include "treerpo/tokenizer/chat.h"
#include "treerpo/train/data_order.h"
#include "treerpo/train/loops.h"
#include "treerpo/train/metrics.h"
#include "treerpo/train/schedule.h"
#include "treerpo/train/scoring.h"
#include "treerpo/train/tree_loss.h"
#include "treerpo/util/device_memory.h"
#include "treerpo/util/error.h"
#include "treerpo/util/progress.h"
#include "treerpo/util/rng.h"

namespace fs = std::filesystem;

namespace treerpo::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A rollout long enough to look stalled (the 1.5B recipe's runs for minutes) reports its progress
// every 30 s of its own clock; a short one says nothing.
std::function<void(const rollout::RolloutStats&)> rollout_progress() {
  return [next = 30.0](const rollout::RolloutStats& s) mutable {
    if (s.seconds < next) return;
    next = s.seconds + 30.0;
    spdlog::info("rollout: {:.0f} s, step {}, {} live branches, {} nodes ({} leaves, depth {}), {} "
                 "tokens generated ({:.0f} tok/s), KV peak {} tokens",
                 s.seconds, s.step, s.live_branches, s.nodes, s.leaves, s.max_depth,
                 s.tokens_generated, s.tokens_per_s(), s.kv_tokens_held_peak);
  };
}

// What one step measured, summed over its trees.
struct StepTotals {
  double loss = 0, leaf_reward = 0, clip_fraction = 0, ratio = 0, kl = 0, split_entropy = 0;
  int64_t trees = 0, nodes = 0, leaves = 0, correct_leaves = 0, zero_signal = 0, skipped = 0;
  int64_t splits = 0, loss_tokens = 0, packed_tokens = 0, per_group_tokens = 0;
  // Generated tokens, those no sample gives an advantage, and the sum of |mean advantage|.
  int64_t credited_tokens = 0, zero_advantage_tokens = 0;
  double abs_advantage = 0;
  int32_t max_depth = 0;
};

// The step's totals over every rank (each rank counted the trees of its share).
void sum_over_ranks(StepTotals& t, dist::World& world) {
  if (!world.joined()) return;
  std::vector<double*> sums = {&t.loss, &t.leaf_reward,   &t.clip_fraction, &t.ratio,
                               &t.kl,   &t.split_entropy, &t.abs_advantage};
  std::vector<int64_t*> counts = {&t.trees,           &t.nodes,
                                  &t.leaves,          &t.correct_leaves,
                                  &t.zero_signal,     &t.skipped,
                                  &t.splits,          &t.loss_tokens,
                                  &t.packed_tokens,   &t.per_group_tokens,
                                  &t.credited_tokens, &t.zero_advantage_tokens};
  std::vector<double> values;
  for (double* v : sums) values.push_back(*v);
  for (int64_t* v : counts) values.push_back(static_cast<double>(*v));
  std::vector<torch::Tensor> packed{torch::tensor(values, torch::kDouble).to(torch::kCPU)};
  world.sum(packed, "the step's totals");
  const double* summed = packed[0].data_ptr<double>();
  size_t i = 0;
  for (double* v : sums) *v = summed[i++];
  for (int64_t* v : counts) *v = static_cast<int64_t>(summed[i++]);
  t.max_depth = static_cast<int32_t>(world.max(t.max_depth, "the step's tree depth"));
}

void add_tree_shape(StepTotals& t, const rollout::Tree& tree) {
  t.trees += 1;
  t.nodes += static_cast<int64_t>(tree.nodes.size());
  t.max_depth = std::max(t.max_depth, tree.max_depth());
  for (const auto& n : tree.nodes) {
    if (n.split_entropy) {
      t.splits += 1;
      t.split_entropy += *n.split_entropy;
    }
    if (n.leaf) {
      // A TEMPO trie leaf stands for every sample that ended with its path.
      t.leaves += n.samples;
      t.leaf_reward += n.samples * n.reward;
      t.correct_leaves += n.correct.value_or(false) ? n.samples : 0;
    }
  }
  rl::ForwardCost cost = rl::forward_cost(tree);
  t.packed_tokens += cost.packed;
  t.per_group_tokens += cost.per_group;
}

// How the credit spreads over a tree's generated tokens (every node but the root).
void add_credit_spread(StepTotals& t, const rollout::Tree& tree,
                       const std::vector<rl::SpanCredit>& credit) {
  for (const auto& node : tree.nodes) {
    if (node.parent < 0) continue;
    const rl::SpanCredit& c = credit[static_cast<size_t>(node.id)];
    for (size_t i = 0; i < c.mean.size(); ++i) {
      t.credited_tokens += 1;
      t.zero_advantage_tokens += c.positive[i] == 0.0f && c.negative[i] == 0.0f;
      t.abs_advantage += std::abs(c.mean[i]);
    }
  }
}

// The step's first micro-batch of trees into the viewer (RUN_DIR/trees): every rank's, in prompt
// order, written by rank 0.
void log_trees(TrainingRun& run, int64_t step, const std::vector<rollout::Tree>& trees) {
  const fs::path dir = fs::path(run.run_dir()) / "trees";
  dist::World& world = run.world();
  if (!world.joined()) {
    if (!trees.empty()) rollout::write_logged_step(dir, step, trees, run.tokenizer());
    return;
  }
  nlohmann::json mine = nlohmann::json::array();
  for (const auto& tree : trees)
    mine.push_back(rollout::tree_to_json(tree, run.tokenizer()).dump());
  std::vector<std::string> lines;
  for (const std::string& rank : world.gather(mine.dump(), "the logged trees")) {
    for (const auto& line : nlohmann::json::parse(rank)) lines.push_back(line.get<std::string>());
  }
  if (world.main() && !lines.empty()) rollout::write_logged_step(dir, step, lines);
}

// Greedy (and maj@k) accuracy on eval.data, as metrics of the step.
std::vector<std::pair<std::string, double>>
periodic_eval(model::Qwen2& model, const tokenizer::Tokenizer& tok,
              const std::vector<eval::Problem>& problems, const Config& config,
              dist::World& world) {
  torch::NoGradGuard no_grad;
  eval::EvalOptions options;
  options.maj = config.eval.maj;
  options.limit = config.eval.limit;
  options.max_new_tokens = config.eval.max_new_tokens;
  options.batch = config.eval.batch;
  options.seed = static_cast<uint64_t>(config.train.seed);
  options.system_prompt = config.data.system_prompt;
  eval::EvalSummary s = eval::evaluate(model, tok, problems, options, "", &world);
  std::vector<std::pair<std::string, double>> values = {
      {"eval/greedy_accuracy", s.greedy_accuracy}};
  if (config.eval.maj > 0) values.emplace_back("eval/maj_accuracy", s.maj_accuracy);
  spdlog::info("eval: greedy {:.1f}%{}", 100 * s.greedy_accuracy,
               config.eval.maj > 0
                   ? fmt::format(", maj@{} {:.1f}%", config.eval.maj, 100 * s.maj_accuracy)
                   : std::string());
  return values;
}

// The step's peak allocated bytes per phase (util/device_memory.h: CUDA's caching allocator, or
// the CPU's AllocationCounter when installed), the max over its micro-batches; the metrics
// memory/<phase>_peak_bytes where the device reports them, and on CUDA the peak of the segments
// the allocator reserved, memory/<phase>_reserved_peak_bytes (what the card must hold).
class PhasePeaks {
public:
  explicit PhasePeaks(torch::Device device) : device_(device) {}
  void begin() { reset_allocated_peak(device_); }
  void end(const char* phase) {
    if (const std::optional<int64_t> peak = allocated_peak_bytes(device_)) {
      double& slot = peaks_[std::string("memory/") + phase + "_peak_bytes"];
      slot = std::max(slot, static_cast<double>(*peak));
      // With -v: each phase's peak as it ends, so a run stopped mid-step still shows how far it
      // fit.
      spdlog::debug("memory: {} peak {:.2f} GiB", phase,
                    static_cast<double>(*peak) / double(int64_t{1} << 30));
    }
    if (const std::optional<int64_t> reserved = reserved_peak_bytes(device_)) {
      double& slot = peaks_[std::string("memory/") + phase + "_reserved_peak_bytes"];
      slot = std::max(slot, static_cast<double>(*reserved));
      spdlog::debug("memory: {} reserved peak {:.2f} GiB", phase,
                    static_cast<double>(*reserved) / double(int64_t{1} << 30));
    }
  }
  void append_to(std::vector<std::pair<std::string, double>>& values) const {
    for (const auto& [name, bytes] : peaks_) values.emplace_back(name, bytes);
  }

private:
  torch::Device device_;
  std::map<std::string, double> peaks_;
};

// The first step after the block of rollout.prompts_in_flight steps that starts at `step`: a block
// ends at the last step and at a scheduled checkpoint, so a checkpoint never falls inside one and a
// resumed run grows the blocks an uninterrupted one does.
int64_t block_end(int64_t step, int64_t total, const Config& config) {
  int64_t end = std::min(total, step + config.rollout.prompts_in_flight);
  const int64_t every = config.checkpoint.every;
  if (every > 0) end = std::min(end, (step / every + 1) * every);
  return end;
}

} // namespace

LoopResult run_rl(const Config& config, const RunOptions& options) {
  if (config.data.train.empty())
    throw bad_input("no training data", "data.train", "set data.train");
  auto problems =
      eval::load_problems(config.data.train, config.data.question_field, config.data.answer_field);
  std::vector<eval::Problem> eval_problems;
  if (config.eval.every > 0) {
    eval_problems =
        eval::load_problems(config.eval.data, config.data.question_field, config.data.answer_field);
  }
  TrainingRun run(config, "rl", options);
  const TrainConfig& tc = config.train;
  const auto& tok = run.tokenizer();
  const auto n = static_cast<int64_t>(problems.size());
  const int64_t per_step = tc.prompts_per_step * tc.grad_accum;
  const int64_t total = tc.steps > 0 ? tc.steps : (tc.epochs * n + per_step - 1) / per_step;
  const auto seed = static_cast<uint64_t>(tc.seed);
  const torch::Dtype dtype = parse_dtype(config.model.dtype);

  const rl::CreditOptions credit = credit_options(config);
  rl::LossOptions loss_options{tc.loss_agg, tc.clip_eps, tc.clip_eps_high, tc.dr_grpo_constant,
                               tc.kl_coef};
  // beta > 0: a frozen copy of the starting policy is the KL reference.
  std::unique_ptr<model::Qwen2> reference;
  if (tc.kl_coef > 0) {
    reference =
        std::make_unique<model::Qwen2>(model::Qwen2::load(config.model.path, dtype, run.device()));
  }

  dist::World& world = run.world();
  // Each rank grows the trees of its share of every micro-batch's prompts; rank 0 writes.
  const dist::Share mine = dist::share_of(tc.prompts_per_step, world.rank(), world.size());
  std::optional<MetricsWriter> metrics;
  std::optional<Progress> progress;
  if (world.main()) {
    metrics.emplace(run.run_dir(), config.log.tensorboard, run.start_step());
    progress.emplace("train", total, "step");
    progress->advance(run.start_step());
  }
  DataOrder order(n, seed, config.data.shuffle);
  LoopResult result;
  // This rank's share of a step's prompts for one micro-batch.
  auto prompts_of = [&](int64_t step, int64_t micro) {
    std::vector<rollout::PromptInput> prompts;
    for (int64_t i = mine.begin; i < mine.end; ++i) {
      const auto& p = problems[static_cast<size_t>(
          order.at((step * tc.grad_accum + micro) * tc.prompts_per_step + i))];
      prompts.push_back(
          {p.question, p.answer,
           tok.encode(tokenizer::qwen_math_prompt(p.question, config.data.system_prompt))});
    }
    return prompts;
  };
  // The block in flight: steps [block_first, block_last), and its trees [step][micro] not yet
  // trained on.
  int64_t block_first = 0, block_last = run.start_step();
  std::vector<std::vector<std::vector<rollout::Tree>>> block;
  // Grows the block starting at `step`, one engine run per micro-batch index holding that index's
  // prompts of every step of the block. A block of one step is the rollout of that step alone.
  auto grow_block = [&](int64_t step, PhasePeaks& peaks) {
    block_first = step;
    block_last = block_end(step, total, config);
    const int64_t steps = block_last - block_first;
    block.assign(static_cast<size_t>(steps),
                 std::vector<std::vector<rollout::Tree>>(static_cast<size_t>(tc.grad_accum)));
    int64_t generated = 0;
    for (int64_t micro = 0; micro < tc.grad_accum; ++micro) {
      std::vector<rollout::PromptInput> prompts;
      for (int64_t k = 0; k < steps; ++k) {
        for (auto& p : prompts_of(block_first + k, micro)) prompts.push_back(std::move(p));
      }
      int64_t longest = 0;
      for (const auto& p : prompts)
        longest = std::max<int64_t>(longest, static_cast<int64_t>(p.prompt_ids.size()));
      peaks.begin();
      std::vector<rollout::Tree> trees;
      {
        torch::NoGradGuard no_grad;
        // The KV cache lives only for the rollout: it is freed before the backward.
        const int64_t pool_tokens =
            rollout::kv_pool_tokens_on(config.rollout, longest, run.model().config(), dtype,
                                       run.device(), config.model.memory_gb);
        if (config.rollout.kv_cache_memory_fraction > 0 && step == run.start_step() && micro == 0) {
          spdlog::info("rollout: KV pool of {} tokens, {:.2f} GiB ({} of the free memory)",
                       pool_tokens,
                       static_cast<double>(
                           pool_tokens * rollout::kv_bytes_per_token(run.model().config(), dtype)) /
                           double(int64_t{1} << 30),
                       config.rollout.kv_cache_memory_fraction);
        }
        rollout::Qwen2Branches branches(
            run.model(), config.rollout.max_live_branches, pool_tokens,
            config.rollout.kv_block_tokens, dtype, run.device(),
            model::decode_attention_from_name(config.rollout.decode_attention),
            rollout::decode_shapes_of(config.rollout),
            longest + config.rollout.max_answer_tokens + 1);
        // Tree j of the run grows from (seed, first step's micro-batch, first_tree + j): the ranks'
        // ranges of j do not overlap.
        rollout::RolloutSetup setup{
            config.rollout, tok.eos_ids(),
            derive_seed(seed, static_cast<uint64_t>(block_first * tc.grad_accum + micro)),
            mine.begin * steps};
        rollout::RolloutStats stats;
        trees = rollout::grow_trees(branches, rollout::tokenizer_streams(tok), setup, prompts,
                                    rollout_progress(), &stats);
        generated += stats.tokens_generated;
      }
      peaks.end("rollout");
      const auto share = static_cast<size_t>(mine.end - mine.begin);
      for (size_t k = 0; k < static_cast<size_t>(steps); ++k) {
        auto& mine_k = block[k][static_cast<size_t>(micro)];
        for (size_t i = 0; i < share; ++i) mine_k.push_back(std::move(trees[k * share + i]));
      }
    }
    return generated;
  };
  for (int64_t step = run.start_step(); step < total; ++step) {
    StepTotals totals;
    PhasePeaks peaks(run.device());
    double rollout_s = 0, train_s = 0;
    int64_t generated = 0;
    std::vector<rollout::Tree> shown;
    if (step >= block_last) {
      const auto started = Clock::now();
      generated = grow_block(step, peaks);
      rollout_s = seconds_since(started);
    }
    for (int64_t micro = 0; micro < tc.grad_accum; ++micro) {
      std::vector<rollout::Tree> trees =
          std::move(block[static_cast<size_t>(step - block_first)][static_cast<size_t>(micro)]);
      auto started = Clock::now();
      peaks.begin();
      // Score and pack every tree first: token-mean needs the micro-batch's loss-token count.
      std::vector<rl::PackedBatch> packs;
      int64_t micro_tokens = 0;
      const auto credits = score_trees(trees, config);
      for (size_t i = 0; i < trees.size(); ++i) {
        const rollout::Tree& tree = trees[i];
        const auto& node_credit = credits[i];
        add_tree_shape(totals, tree);
        add_credit_spread(totals, tree, node_credit);
        bool no_signal = rl::zero_signal(tree);
        totals.zero_signal += no_signal ? 1 : 0;
        if (no_signal && tc.filter_zero_signal) {
          totals.skipped += 1;
          continue;
        }
        packs.push_back(rl::pack_tree(tree, node_credit, credit.rule));
        micro_tokens += packs.back().loss_tokens();
      }
      if (tc.loss_agg == "token-mean")
        micro_tokens = world.sum(micro_tokens, "the loss-token count");
      const TreeLossSetup loss_setup{loss_options, reference.get(), run.autocast(),
                                     tc.max_tokens_per_forward};
      for (const rl::PackedBatch& packed : packs) {
        // token-mean (DAPO) is one mean over all loss tokens of the step, so a tree weighs by its
        // tokens; the per-group aggregations average the step's prompts.
        const int64_t tokens = packed.loss_tokens();
        double weight =
            tc.loss_agg == "token-mean"
                ? static_cast<double>(tokens) /
                      static_cast<double>(std::max<int64_t>(1, micro_tokens) * tc.grad_accum)
                : 1.0 / static_cast<double>(tc.prompts_per_step * tc.grad_accum);
        rl::LossResult r = tree_loss_backward(run.model(), packed, loss_setup, weight);
        totals.loss += r.loss.item<double>() * weight;
        totals.clip_fraction += r.clip_fraction;
        totals.ratio += r.mean_ratio;
        totals.kl += r.kl;
        totals.loss_tokens += r.tokens;
      }
      train_s += seconds_since(started);
      peaks.end("train");
      if (shown.empty()) shown = std::move(trees);
    }
    sum_over_ranks(totals, world);
    generated = world.sum(generated, "the sampled-token count");
    auto started = Clock::now();
    double lr = learning_rate(tc.lr, tc.lr_schedule, tc.warmup_steps, step, total);
    peaks.begin();
    std::optional<double> norm = run.apply_gradients(lr, totals.loss);
    peaks.end("optimizer");
    train_s += seconds_since(started);

    auto trained = static_cast<double>(std::max<int64_t>(1, totals.trees - totals.skipped));
    auto per = [&](double v, int64_t count) {
      return count > 0 ? v / static_cast<double>(count) : 0.0;
    };
    run.add_sampled_tokens(generated);
    std::vector<std::pair<std::string, double>> values = {
        {"loss", totals.loss},
        {"reward/mean", per(totals.leaf_reward, totals.leaves)},
        {"accuracy/leaf", per(static_cast<double>(totals.correct_leaves), totals.leaves)},
        {"tree/nodes", per(static_cast<double>(totals.nodes), totals.trees)},
        {"tree/leaves", per(static_cast<double>(totals.leaves), totals.trees)},
        {"tree/max_depth", totals.max_depth},
        {"tree/zero_signal", static_cast<double>(totals.zero_signal)},
        {"tree/split_entropy", per(totals.split_entropy, totals.splits)},
        {"tokens/generated", static_cast<double>(generated)},
        {"tokens/packed", static_cast<double>(totals.packed_tokens)},
        {"tokens/per_group_forward", static_cast<double>(totals.per_group_tokens)},
        {"tokens/loss", static_cast<double>(totals.loss_tokens)},
        {"credit/zero_share",
         per(static_cast<double>(totals.zero_advantage_tokens), totals.credited_tokens)},
        {"credit/abs_mean", per(totals.abs_advantage, totals.credited_tokens)},
        {"clip_fraction", totals.clip_fraction / trained},
        {"ratio/mean", totals.ratio / trained},
        {"kl", totals.kl / trained},
        {"grad_norm", norm.value_or(NAN)},
        {"lr", lr},
        {"time/rollout", rollout_s},
        {"rollout/lag", static_cast<double>(step - block_first)},
        {"time/train", train_s},
        {"tokens/sampled_total", static_cast<double>(run.sampled_tokens())},
        {"tokens_per_s", static_cast<double>(generated) / std::max(1e-9, rollout_s)}};
    peaks.append_to(values);
    if (world.joined()) {
      // Rank 0's share of the wall time in gradient collectives, and what it sent, so far.
      values.emplace_back("time/communication", run.communication_s());
      values.emplace_back("dist/bytes_sent", static_cast<double>(run.communication_bytes()));
    }
    if (config.eval.every > 0 && (step + 1) % config.eval.every == 0) {
      auto evaluated = periodic_eval(run.model(), tok, eval_problems, config, world);
      values.insert(values.end(), evaluated.begin(), evaluated.end());
    }
    if (metrics) metrics->write(step + 1, values);
    if (progress) {
      progress->advance(1, fmt::format("reward {:.3f} nodes {:.1f}",
                                       per(totals.leaf_reward, totals.leaves),
                                       per(static_cast<double>(totals.nodes), totals.trees)));
    }
    if (config.log.render_trees_every > 0 && (step + 1) % config.log.render_trees_every == 0) {
      log_trees(run, step + 1, shown);
    }
    // train.token_budget: stop once the sampled tokens reach it (baselines at an equal budget).
    bool last =
        step + 1 == total || (tc.token_budget > 0 && run.sampled_tokens() >= tc.token_budget);
    bool every = config.checkpoint.every > 0 && (step + 1) % config.checkpoint.every == 0;
    // A stop request waits for the block's last step: its trees were grown by weights no
    // checkpoint keeps, so a resumed run could not train on them.
    const bool stop = run.stop_agreed() && step + 1 >= block_last;
    if (last || every || stop) result.checkpoint = run.checkpoint(step + 1);
    result.steps = step + 1;
    if (last) break;
    if (stop) {
      result.interrupted = true;
      break;
    }
  }
  if (result.checkpoint.empty()) {
    result.steps = run.start_step();
    result.checkpoint = Checkpoints(run.run_dir(), config.checkpoint.keep).latest().value_or("");
  }
  return result;
}

} // namespace treerpo::train
