// treerpo-train: entry point. Parses the command line, runs the chosen subcommand and turns errors
// into one line on stderr and an exit code (0 ok, 1 runtime failure, 2 bad input).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "command.h"
#include "treerpo/util/error.h"
#include "treerpo/util/log.h"

namespace {

// `treerpo-train --config FILE ...` means `treerpo-train train --config FILE ...`: without a
// subcommand name among the arguments, a --config selects train.
std::vector<std::string> with_default_subcommand(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  bool has_config = false, has_subcommand = false;
  for (const auto& a : args) {
    has_config |= (a == "--config" || a.rfind("--config=", 0) == 0);
    for (const CLI::App* sub : app.get_subcommands({})) has_subcommand |= (a == sub->get_name());
  }
  if (has_config && !has_subcommand) args.insert(args.begin(), "train");
  return args;
}

// First line only: LibTorch errors append a C++ backtrace that users should not see.
std::string first_line(const char* what) {
  std::string s(what);
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"treerpo-train: TreeRPO reinforcement learning for reasoning LLMs on LibTorch",
               "treerpo-train"};
  app.require_subcommand(1);
  app.fallthrough();
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "Debug-level logging");
  app.add_flag("-q,--quiet", quiet, "Warnings and errors only");
  app.parse_complete_callback([&] {
    treerpo::setup_logging(verbose ? treerpo::Verbosity::Verbose
                           : quiet ? treerpo::Verbosity::Quiet
                                   : treerpo::Verbosity::Normal);
  });

#define TREERPO_COMMAND(name) treerpo::cli::add_##name##_command(app);
#include "command_list.inc"
#undef TREERPO_COMMAND

  std::vector<std::string> args = with_default_subcommand(app, argc, argv);
  std::reverse(args.begin(), args.end()); // CLI11 consumes a reversed vector
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "error: %s; see `treerpo-train --help`\n", e.what());
    return 2;
  } catch (const treerpo::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", first_line(e.what()).c_str());
    return 1;
  }
  return 0;
}
