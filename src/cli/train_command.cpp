#include <cstdio>

#include "command.h"
#include "run_options.h"
#include "treerpo/config/config.h"

namespace treerpo::cli {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "train",
      "RL training: TreeRPO (default) or grpo/tempo/treepo/fixed trees; the default subcommand");
  auto args = add_run_options(cmd);
  auto dry_run = std::make_shared<bool>(false);
  cmd->add_flag("--dry-run", *dry_run,
                "Validate the configuration and print the effective config, then exit");
  cmd->callback([args, dry_run] {
    Config config = load_config(args->config, args->overrides);
    if (*dry_run) {
      std::fputs(to_yaml(config).c_str(), stdout);
      return;
    }
    finish_run(train::run_rl(config, args->run));
  });
}

} // namespace treerpo::cli
