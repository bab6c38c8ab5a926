#pragma once
// Subcommands of treerpo-train. Each lives in `<name>_command.cpp` and defines
// `add_<name>_command(app)`, which adds a CLI11 subcommand whose callback does the work and reports
// user mistakes by throwing treerpo::Error (main prints one line and exits 2, or 1 for runtime
// failures).
#include <CLI/CLI.hpp>

namespace treerpo::cli {

#define TREERPO_COMMAND(name) void add_##name##_command(CLI::App& app);
#include "command_list.inc"
#undef TREERPO_COMMAND

// The `bench` subcommand, created on first use: each module's command file hangs its benchmark
// under it
// (`treerpo-train bench tokenizer`, `bench checker`, ...), each printing one JSON object on stdout.
inline CLI::App* bench_subcommand(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands({})) {
    if (sub->get_name() == "bench") return sub;
  }
  auto* bench = app.add_subcommand("bench", "Benchmarks; each prints one JSON object on stdout");
  bench->require_subcommand(1);
  return bench;
}

} // namespace treerpo::cli
