#include <cstdio>

#include <torch/version.h>

#include "command.h"

namespace treerpo::cli {

void add_version_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print the treerpo and LibTorch versions");
  cmd->callback([] { std::printf("treerpo %s (LibTorch %s)\n", TREERPO_VERSION, TORCH_VERSION); });
}

} // namespace treerpo::cli
