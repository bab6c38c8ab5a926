#pragma once
// The options `train` and `sft` share: the config, its overrides and how to resume.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "treerpo/train/loops.h"

namespace treerpo::cli {

struct RunArgs {
  std::string config;
  std::vector<std::string> overrides;
  train::RunOptions run;
};

inline std::shared_ptr<RunArgs> add_run_options(CLI::App* cmd) {
  auto args = std::make_shared<RunArgs>();
  cmd->add_option("--config", args->config, "YAML run configuration")->required();
  cmd->add_option("--set", args->overrides, "Override a key: section.key=value (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--resume", args->run.resume,
                  "Resume from this checkpoint folder (default: the run directory's newest)");
  cmd->add_flag("--force", args->run.force, "Resume even though the configuration changed");
  return args;
}

// The end of a training command: the trained model's folder on stdout, or exit 130 when a signal
// stopped the run after its checkpoint.
inline void finish_run(const train::LoopResult& result) {
  if (result.interrupted) {
    spdlog::warn("interrupted at step {}; re-run the same command to resume", result.steps);
    std::exit(130);
  }
  // One line for the job: ranks other than 0 (torchrun's RANK) print nothing.
  const char* rank = std::getenv("RANK");
  if (rank == nullptr || std::string(rank) == "0") std::printf("%s\n", result.checkpoint.c_str());
}

} // namespace treerpo::cli
