// `treerpo-train eval`: GSM8K-style accuracy of a model folder, greedy and/or maj@k with the
// Qwen2.5-Math protocol; the summary as one JSON object on stdout, per-problem lines in --out.
#include <chrono>
#include <cstdio>

#include <spdlog/spdlog.h>

#include <torch/types.h>

#include "command.h"
#include "device_options.h"
#include "treerpo/dist/world.h"
#include "treerpo/eval/dataset.h"
#include "treerpo/eval/evaluate.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/util/error.h"

namespace treerpo::cli {

namespace {

struct EvalArgs {
  std::string model, data, out, device = "cpu", dtype = "float32";
  std::string question_field = "question", answer_field = "answer";
  bool greedy = false;
  int64_t timeout_s = 1800; // a job of several ranks: how long a rank waits for the others
  eval::EvalOptions options;
};

void run_eval(EvalArgs a) {
  // Neither --greedy nor --maj: greedy. --maj alone: maj@k only.
  a.options.greedy = a.greedy || a.options.maj == 0;
  // Under torchrun or `launch`, the ranks decode the batches in turn; rank 0 writes and prints.
  const dist::Launch launch = dist::launch_from_env();
  const torch::Device device = dist::rank_device(parse_device(a.device).str(), launch);
  const torch::Dtype dtype = parse_dtype(a.dtype);
  const auto problems = eval::load_problems(a.data, a.question_field, a.answer_field);
  // The model first: its load checks a checkpoint's checksums before the tokenizer reads its file.
  auto model = model::Qwen2::load(a.model, dtype, device);
  auto tok = tokenizer::Tokenizer::load(a.model);
  if (launch.rank > 0 && spdlog::get_level() == spdlog::level::info)
    spdlog::set_level(spdlog::level::warn);
  dist::World world(launch, device, std::chrono::seconds(a.timeout_s));
  const eval::EvalSummary s = eval::evaluate(model, *tok, problems, a.options, a.out, &world);
  if (world.main()) std::printf("%s\n", eval::summary_json(s).c_str());
}

} // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval", "GSM8K-style accuracy: greedy and/or maj@k (Qwen2.5-Math protocol)");
  static EvalArgs a;
  cmd->add_option("--model", a.model, "Hugging Face model folder (weights and tokenizer)")
      ->required();
  cmd->add_option("--data", a.data, "JSONL problems, one a line")->required();
  cmd->add_flag("--greedy", a.greedy, "greedy answers (the default when --maj is not given)");
  cmd->add_option("--maj", a.options.maj, "k samples per problem and their majority vote")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--limit", a.options.limit, "first N problems (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--out", a.out, "per-problem JSONL; re-running resumes it");
  cmd->add_option("--batch", a.options.batch, "prompts decoded together")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--question-field", a.question_field, "JSON field holding the question");
  cmd->add_option("--answer-field", a.answer_field, "JSON field holding the gold answer");
  cmd->add_option("--device", a.device, "cpu | cuda | cuda:N");
  cmd->add_option("--dtype", a.dtype, "float32 | bfloat16");
  cmd->add_option("--max-new-tokens", a.options.max_new_tokens, "generated tokens per answer")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a.options.seed, "maj@k sampling and tie-break seed");
  cmd->add_option("--system", a.options.system_prompt, "system prompt of the chat template");
  cmd->add_option("--timeout", a.timeout_s,
                  "under torchrun or launch: seconds a rank waits for the others")
      ->check(CLI::PositiveNumber);
  cmd->callback([] { run_eval(a); });
}

} // namespace treerpo::cli
