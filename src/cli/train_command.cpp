#include <cstdio>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "command.h"
#include "treerpo/config/config.h"
#include "treerpo/train/loops.h"

namespace treerpo::cli {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "train",
      "RL training: TreeRPO (default) or grpo/tempo/treepo/fixed trees; the default subcommand");
  struct Options {
    std::string config;
    std::vector<std::string> overrides;
    bool dry_run = false;
    train::RunOptions run;
  };
  auto opts = std::make_shared<Options>();
  cmd->add_option("--config", opts->config, "YAML run configuration")->required();
  cmd->add_option("--set", opts->overrides, "Override a key: section.key=value (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--resume", opts->run.resume,
                  "Resume from this checkpoint folder (default: the run directory's newest)");
  cmd->add_flag("--force", opts->run.force, "Resume even though the configuration changed");
  cmd->add_flag("--dry-run", opts->dry_run,
                "Validate the configuration and print the effective config, then exit");
  cmd->callback([opts] {
    Config config = load_config(opts->config, opts->overrides);
    if (opts->dry_run) {
      std::fputs(to_yaml(config).c_str(), stdout);
      return;
    }
    train::LoopResult result = train::run_rl(config, opts->run);
    if (result.interrupted) {
      spdlog::warn("interrupted at step {}; re-run the same command to resume", result.steps);
      std::exit(130);
    }
    std::printf("%s\n", result.checkpoint.c_str());
  });
}

} // namespace treerpo::cli
