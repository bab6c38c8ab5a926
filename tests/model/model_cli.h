#pragma once
// Runs a model subcommand of the real treerpo-train binary (`score`, `generate`) on one input file,
// capturing its exit code and output lines.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "../common/temp_dir.h"

namespace treerpo::testing {

struct CliResult {
  int exit_code;
  std::vector<std::string> out, err;
};

inline std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// treerpo-train <subcommand> --model <model_dir> --input <work/input.jsonl holding `input`> <flags>
inline CliResult run_model_command(const std::string& subcommand, const TempDir& work,
                                   const std::string& model_dir, const std::string& input,
                                   const std::string& flags) {
  std::ofstream(work / "input.jsonl") << input;
  const std::string command = std::string(TREERPO_CLI) + " " + subcommand + " --model " +
                              model_dir + " --input " + (work / "input.jsonl") + " " + flags +
                              " > " + (work / "out.txt") + " 2> " + (work / "err.txt");
  const int status = std::system(command.c_str());
  return {WEXITSTATUS(status), lines_of(work / "out.txt"), lines_of(work / "err.txt")};
}

} // namespace treerpo::testing
