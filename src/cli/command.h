#pragma once
// Subcommands of treerpo-train. Each lives in `<name>_command.cpp` and defines
// `add_<name>_command(app)`, which adds a CLI11 subcommand whose callback does the work and reports
// user mistakes by throwing treerpo::Error (main prints one line and exits 2, or 1 for runtime failures).
#include <CLI/CLI.hpp>

namespace treerpo::cli {

#define TREERPO_COMMAND(name) void add_##name##_command(CLI::App& app);
#include "command_list.inc"
#undef TREERPO_COMMAND

}  // namespace treerpo::cli
