// `treerpo-train view RUN_DIR`: (re)writes the run's tree viewer, RUN_DIR/trees/index.html and a
// step-N.js beside each logged step-N.jsonl, and prints the page's path for a browser to open.
#include <cstdio>
#include <filesystem>
#include <string>

#include "command.h"
#include "treerpo/rollout/viewer.h"
#include "treerpo/util/error.h"

namespace treerpo::cli {
namespace {

namespace fs = std::filesystem;

void run_view(const std::string& run_dir) {
  const fs::path trees = fs::path(run_dir) / "trees";
  const auto steps = rollout::logged_steps(trees);
  if (steps.empty()) {
    throw bad_input("no logged trees (trees/step-N.jsonl)", run_dir,
                    "pass the checkpoint.dir of a train run with log.render_trees_every > 0");
  }
  for (int64_t step : steps) rollout::write_step_script(trees, step);
  const fs::path index = rollout::write_viewer_index(trees);
  std::printf("%s\n", fs::absolute(index).lexically_normal().string().c_str());
}

} // namespace

void add_view_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("view", "Write the tree viewer of a run and print its path");
  static std::string run_dir;
  cmd->add_option("RUN_DIR", run_dir, "a train run's folder (its checkpoint.dir)")->required();
  cmd->callback([] { run_view(run_dir); });
}

} // namespace treerpo::cli
