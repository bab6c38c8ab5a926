#include "command.h"
#include "run_options.h"
#include "treerpo/config/config.h"

namespace treerpo::cli {

void add_sft_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "sft",
      "Supervised warm-up on chat-formatted CoT solutions (sft.* keys), loss on assistant tokens");
  auto args = add_run_options(cmd);
  cmd->callback([args] {
    Config config = load_config(args->config, args->overrides);
    finish_run(train::run_sft(config, args->run));
  });
}

} // namespace treerpo::cli
