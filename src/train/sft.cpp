// Supervised warm-up: the seed's SFT phase on CoT solutions, loss on the assistant's tokens only.
#include <chrono>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "treerpo/dist/world.h"
#include "treerpo/eval/dataset.h"
#include "treerpo/tokenizer/chat.h"
#include "treerpo/train/data_order.h"
#include "treerpo/train/loops.h"
#include "treerpo/train/metrics.h"
#include "treerpo/train/schedule.h"
#include "treerpo/util/error.h"
#include "treerpo/util/progress.h"

namespace treerpo::train {
namespace {

struct Example {
  std::vector<int32_t> ids; // prompt + solution + end-of-turn
  int64_t prompt_len = 0;
};

Example encode_example(const tokenizer::Tokenizer& tok, const eval::Problem& p,
                       const std::string& system, int32_t end_of_turn) {
  Example e;
  e.ids = tok.encode(tokenizer::qwen_math_prompt(p.question, system));
  e.prompt_len = static_cast<int64_t>(e.ids.size());
  std::vector<int32_t> answer = tok.encode(p.answer);
  e.ids.insert(e.ids.end(), answer.begin(), answer.end());
  e.ids.push_back(end_of_turn);
  return e;
}

int32_t end_of_turn_id(const tokenizer::Tokenizer& tok) {
  if (auto id = tok.token_id("<|im_end|>")) return *id;
  auto eos = tok.eos_ids();
  if (eos.empty())
    throw bad_input("the tokenizer defines no end-of-sequence token", "model.tokenizer");
  return eos.front();
}

} // namespace

LoopResult run_sft(const Config& config, const RunOptions& options) {
  const SftConfig& sft = config.sft;
  std::string data = sft.data.empty() ? config.data.train : sft.data;
  if (data.empty()) throw bad_input("no SFT data", "sft.data", "set sft.data (or data.train)");
  auto problems = eval::load_problems(data, sft.question_field, sft.solution_field);

  TrainingRun run(config, "sft", options);
  const auto& tok = run.tokenizer();
  int32_t end_of_turn = end_of_turn_id(tok);
  const auto n = static_cast<int64_t>(problems.size());
  const int64_t per_step = sft.batch_size * config.train.grad_accum;
  const int64_t total = sft.steps > 0 ? sft.steps : (sft.epochs * n + per_step - 1) / per_step;
  const auto seed = static_cast<uint64_t>(config.train.seed);

  dist::World& world = run.world();
  // Each rank forwards its share of every step's examples; rank 0 writes.
  const dist::Share mine = dist::share_of(per_step, world.rank(), world.size());
  std::optional<MetricsWriter> metrics;
  std::optional<Progress> progress;
  if (world.main()) {
    metrics.emplace(run.run_dir(), config.log.tensorboard, run.start_step());
    progress.emplace("sft", total, "step");
    progress->advance(run.start_step());
  }
  LoopResult result;
  DataOrder order(n, seed, config.data.shuffle);
  for (int64_t step = run.start_step(); step < total; ++step) {
    auto started = std::chrono::steady_clock::now();
    std::vector<Example> batch;
    int64_t target_tokens = 0;
    for (int64_t i = mine.begin; i < mine.end; ++i) {
      const eval::Problem& problem = problems[static_cast<size_t>(order.at(step * per_step + i))];
      batch.push_back(encode_example(tok, problem, config.data.system_prompt, end_of_turn));
      target_tokens += static_cast<int64_t>(batch.back().ids.size()) - batch.back().prompt_len;
    }
    // The batch as a forest of chains: one packed forward computes every example's log-probs.
    model::PackedTree forest;
    std::vector<int64_t> target_rows;
    for (const Example& e : batch) {
      auto first = static_cast<int32_t>(forest.tokens.size());
      for (size_t t = 0; t < e.ids.size(); ++t) {
        if (static_cast<int64_t>(t) >= e.prompt_len)
          target_rows.push_back(first + static_cast<int64_t>(t));
        forest.parent.push_back(t == 0 ? -1 : first + static_cast<int32_t>(t) - 1);
        forest.tokens.push_back(e.ids[t]);
      }
    }
    // The loss is a mean over the step's target tokens on every rank.
    const int64_t step_tokens = world.sum(target_tokens, "the target-token count");
    double loss_sum = 0;
    if (!batch.empty()) {
      torch::Tensor logprobs;
      {
        AutocastScope precision(run.device().type(), run.autocast());
        logprobs = run.model().tree_logprobs(forest);
      }
      torch::Tensor rows = torch::tensor(target_rows, torch::kLong).to(logprobs.device());
      torch::Tensor nll = -logprobs.index_select(0, rows).sum();
      (nll / static_cast<double>(step_tokens)).backward();
      loss_sum = nll.item<double>();
    }
    loss_sum = world.sum(loss_sum, "the loss");
    target_tokens = step_tokens;
    double loss = loss_sum / static_cast<double>(target_tokens);
    double lr = learning_rate(sft.lr, sft.lr_schedule, config.train.warmup_steps, step, total);
    std::optional<double> norm = run.apply_gradients(lr, loss);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (metrics)
      metrics->write(step + 1, {{"loss", loss},
                                {"lr", lr},
                                {"grad_norm", norm.value_or(NAN)},
                                {"skipped", norm ? 0.0 : 1.0},
                                {"tokens/target", static_cast<double>(target_tokens)},
                                {"time/step", seconds},
                                {"tokens_per_s", static_cast<double>(target_tokens) / seconds}});
    if (progress) progress->advance(1, fmt::format("loss {:.4f}", loss));
    bool last = step + 1 == total;
    bool every = config.checkpoint.every > 0 && (step + 1) % config.checkpoint.every == 0;
    const bool stop = run.stop_agreed();
    if (last || every || stop) result.checkpoint = run.checkpoint(step + 1);
    result.steps = step + 1;
    if (stop && !last) {
      result.interrupted = true;
      break;
    }
  }
  if (result.checkpoint.empty()) { // nothing left to do: the run was already complete
    result.steps = total;
    result.checkpoint = Checkpoints(run.run_dir(), config.checkpoint.keep).latest().value_or("");
  }
  return result;
}

} // namespace treerpo::train
