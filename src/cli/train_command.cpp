#include <cstdio>

#include "command.h"
#include "treerpo/config/config.h"
#include "treerpo/util/error.h"

namespace treerpo::cli {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "train", "TreeRPO (or GRPO/TEMPO/TreePO/fixed-tree) RL training; the default subcommand");
  struct Options {
    std::string config;
    std::vector<std::string> overrides;
    bool dry_run = false;
  };
  auto opts = std::make_shared<Options>();
  cmd->add_option("--config", opts->config, "YAML run configuration")->required();
  cmd->add_option("--set", opts->overrides, "Override a key: section.key=value (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_flag("--dry-run", opts->dry_run,
                "Validate the configuration and print the effective config, then exit");
  cmd->callback([opts] {
    Config config = load_config(opts->config, opts->overrides);
    if (opts->dry_run) {
      std::fputs(to_yaml(config).c_str(), stdout);
      return;
    }
    throw runtime_failure("the RL training loop is not part of this build yet", "train",
                          "use --dry-run to validate a configuration");
  });
}

} // namespace treerpo::cli
