// `treerpo-train plan`: the memory plan of a run (train/memory_plan.h) as one JSON object on
// stdout, from the model folder's config.json or a built-in shape; no weights are loaded.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "treerpo/config/config.h"
#include "treerpo/model/config.h"
#include "treerpo/train/memory_plan.h"
#include "treerpo/util/error.h"

namespace treerpo::cli {
namespace {

struct PlanArgs {
  std::string config, shape;
  std::vector<std::string> overrides;
  train::PlanOptions options;
};

void run_plan(const PlanArgs& args) {
  const Config config = load_config(args.config, args.overrides);
  model::Qwen2Config shape;
  if (!args.shape.empty()) {
    shape = model::Qwen2Config::builtin(args.shape, "--shape");
  } else {
    const std::string path = (std::filesystem::path(config.model.path) / "config.json").string();
    if (!std::filesystem::exists(path)) {
      throw bad_input("no config.json in the model folder", path,
                      "set model.path to a Hugging Face model folder, or pass --shape");
    }
    shape = model::Qwen2Config::from_json_file(path);
  }
  std::printf("%s\n", train::memory_plan_json(config, shape, args.options).c_str());
}

} // namespace

void add_plan_command(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  auto* cmd = app.add_subcommand("plan", "Device memory a run needs, per component and phase "
                                         "(JSON; no weights loaded)");
  cmd->add_option("--config", args->config, "YAML run configuration")->required();
  cmd->add_option("--set", args->overrides, "Override a key: section.key=value (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--memory", args->options.memory_gib, "Device memory in GiB (default 24)");
  cmd->add_option("--shape", args->shape,
                  "Built-in model shape instead of config.json: qwen2.5-math-1.5b | tiny");
  cmd->add_option("--prompt-tokens", args->options.prompt_tokens, "Prompt tokens (default 200)");
  cmd->add_option("--tree-tokens", args->options.tree_tokens,
                  "Unique tokens of the tree below the prompt (default 60000)");
  cmd->callback([args] { run_plan(*args); });
}

} // namespace treerpo::cli
