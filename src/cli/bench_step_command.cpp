// `treerpo-train bench step`: full TreeRPO steps (rollout, scoring, packed training forward and
// backward, optimiser update) on the demo's synthetic task and model, with LibTorch's CPU
// allocator counted (util/allocation_counter.h): the allocated-bytes peak of each phase, beside the
// memory plan's for the same config, model and tree size, as one JSON object.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"
#include "treerpo/config/config.h"
#include "treerpo/eval/dataset.h"
#include "treerpo/model/config.h"
#include "treerpo/tokenizer/chat.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/train/demo.h"
#include "treerpo/train/loops.h"
#include "treerpo/train/memory_plan.h"
#include "treerpo/util/allocation_counter.h"
#include "treerpo/util/error.h"

namespace treerpo::cli {
namespace {

namespace fs = std::filesystem;

struct StepBenchOptions {
  std::string config, workspace;
  std::vector<std::string> overrides;
  int64_t steps = 2;
};

const char* const kPhases[] = {"rollout", "train", "optimizer"};
// The plan's phase each measured phase is compared with.
const std::map<std::string, std::string> kPlanPhase = {
    {"rollout", "rollout"}, {"train", "train_forward_backward"}, {"optimizer", "optimizer_step"}};

void run_bench(const StepBenchOptions& o) {
  const std::string where = "bench step";
  if (o.steps < 1) throw bad_input("--steps must be at least 1", where, "use e.g. --steps 2");
  // Before any tensor exists: every allocation of the run is counted.
  AllocationCounter::install();
  const fs::path ws = o.workspace;
  if (!fs::exists(ws / "model" / "model.safetensors")) {
    train::write_demo_workspace(ws.string(), train::DemoOptions{});
  }
  const fs::path run_dir = ws / "bench-step";
  fs::remove_all(run_dir);
  std::vector<std::string> overrides = {"model.path=" + (ws / "model").string(),
                                        "data.train=" + (ws / "data/train.jsonl").string(),
                                        "checkpoint.dir=" + run_dir.string(),
                                        "train.steps=" + std::to_string(o.steps),
                                        "checkpoint.every=0",
                                        "eval.every=0"};
  overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
  const Config config = load_config(o.config, overrides);
  if (config.model.device != "cpu") {
    throw bad_input("bench step counts the CPU allocator; model.device is " + config.model.device,
                    where, "leave model.device at cpu (the GPU check measures CUDA's allocator)");
  }
  train::run_rl(config, train::RunOptions{});

  // Each phase's peak over the steps, and the step's tree size for the plan.
  std::map<std::string, double> measured;
  double packed = 0, rollout_s = 0, train_s = 0;
  std::ifstream metrics(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const nlohmann::json m = nlohmann::json::parse(line);
    for (const char* phase : kPhases) {
      const std::string key = std::string("memory/") + phase + "_peak_bytes";
      if (m.contains(key)) measured[phase] = std::max(measured[phase], m[key].get<double>());
    }
    packed = std::max(packed, m["tokens/packed"].get<double>());
    rollout_s += m["time/rollout"].get<double>();
    train_s += m["time/train"].get<double>();
  }
  train::PlanOptions plan_options;
  // The plan's tree: the data's longest prompt above a seed-shaped tree of the rest of the
  // largest step's packed tokens per tree.
  const auto tok = tokenizer::Tokenizer::load((ws / "model").string());
  int64_t longest = 1;
  for (const eval::Problem& p : eval::load_problems(config.data.train, config.data.question_field,
                                                    config.data.answer_field)) {
    const std::string prompt = tokenizer::qwen_math_prompt(p.question, config.data.system_prompt);
    longest = std::max<int64_t>(longest, static_cast<int64_t>(tok->encode(prompt).size()));
  }
  plan_options.prompt_tokens = longest;
  plan_options.tree_tokens = std::max<int64_t>(
      1,
      static_cast<int64_t>(packed / static_cast<double>(config.train.prompts_per_step)) - longest);
  const nlohmann::json plan = nlohmann::json::parse(train::memory_plan_json(
      config, model::Qwen2Config::from_json_file((ws / "model/config.json").string()),
      plan_options));
  nlohmann::json phases;
  for (const char* phase : kPhases) {
    const auto planned = plan["phases"][kPlanPhase.at(phase)].get<double>();
    phases[phase] = {{"measured_peak_bytes", static_cast<int64_t>(measured[phase])},
                     {"plan_bytes", static_cast<int64_t>(planned)},
                     {"plan_over_measured", measured[phase] > 0 ? planned / measured[phase] : 0.0}};
  }
  const nlohmann::json out = {
      {"bench", "step"},
      {"steps", o.steps},
      {"parameters", plan["assumptions"]["parameters"]},
      {"prompt_tokens", plan_options.prompt_tokens},
      {"tree_tokens", plan_options.tree_tokens},
      {"phases", phases},
      {"seconds_rollout", rollout_s},
      {"seconds_train", train_s},
      {"plan_forward_pieces", plan["assumptions"]["forward_pieces"]},
      {"note", "measured: LibTorch CPU allocator bytes (AllocationCounter), the peak of each "
               "phase over the steps, weights and state included; plan: treerpo-train plan for "
               "the same config and model with the data's longest prompt and a seed-shaped "
               "synthetic tree of the rest of the largest step's packed tokens per tree (the "
               "real trees' shapes differ)"}};
  std::printf("%s\n", out.dump().c_str());
}

} // namespace

void add_bench_step_command(CLI::App& app) {
  static StepBenchOptions o;
  auto* b = bench_subcommand(app)->add_subcommand(
      "step", "Full TreeRPO steps on the demo task: allocator peak per phase beside the plan");
  b->add_option("--config", o.config, "YAML run configuration (e.g. configs/demo.yaml)")
      ->required();
  b->add_option("--set", o.overrides, "Override a key: section.key=value (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  b->add_option(
       "--workspace", o.workspace,
       "Folder for the demo workspace (made when missing) and the run (DIR/bench-step, replaced)")
      ->required();
  b->add_option("--steps", o.steps, "TreeRPO steps (default 2)");
  b->callback([] { run_bench(o); });
}

} // namespace treerpo::cli
