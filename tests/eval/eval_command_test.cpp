// `treerpo-train eval` through the binary: the summary JSON on stdout, and one-line errors with
// exit code 2 for bad input.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tiny_eval_model.h"

extern char** environ;

namespace {

using treerpo::eval::testing::TempDir;

std::vector<std::string> sorted_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

struct Result {
  int exit_code = -1;
  std::string out, err;
};

Result run_cli(const std::string& args, const TempDir& dir) {
  const std::string err_path = dir / "stderr.txt";
  const std::string cmd = std::string(TREERPO_CLI) + " " + args + " 2>" + err_path;
  Result r;
  FILE* pipe = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe)) > 0;) r.out.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_path);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

TEST(EvalCommand, PrintsSummaryAndRefusesBadInput) {
  TempDir dir;
  treerpo::eval::testing::write_tiny_model(dir / "model");
  {
    std::ofstream data(dir / "gsm8k.jsonl");
    for (const auto& p : treerpo::eval::testing::gsm8k_fixture()) {
      data << nlohmann::json{{"question", p.question}, {"answer", p.answer}}.dump() << "\n";
    }
  }
  const std::string common =
      "eval --model " + (dir / "model") + " --data " + (dir / "gsm8k.jsonl") + " -q";
  const Result ok = run_cli(
      common + " --limit 2 --max-new-tokens 8 --maj 2 --greedy --out " + (dir / "out.jsonl"), dir);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  const auto summary = nlohmann::json::parse(ok.out);
  EXPECT_EQ(summary["problems"], 2);
  EXPECT_EQ(summary["maj"]["k"], 2);
  EXPECT_TRUE(summary.contains("greedy"));

  for (const std::string bad : {" --dtype float16", " --device tpu", " --batch 0"}) {
    const Result r = run_cli(common + bad, dir);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const Result missing =
      run_cli("eval --model " + (dir / "model") + " --data " + (dir / "absent.jsonl"), dir);
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
}

// SIGTERM (what a scheduler sends) mid-run: the lines written so far are whole problems, and the
// re-run completes the file to exactly what an uninterrupted run writes.
TEST(EvalCommand, SigtermDuringOutLeavesAFileThatResumes) {
  TempDir dir;
  treerpo::eval::testing::write_tiny_model(dir / "model");
  constexpr int kProblems = 12;
  {
    std::ofstream data(dir / "gsm8k.jsonl");
    const auto fixture = treerpo::eval::testing::gsm8k_fixture();
    for (int i = 0; i < kProblems; ++i) {
      const auto& p = fixture[static_cast<size_t>(i) % fixture.size()];
      data << nlohmann::json{{"question", p.question + " (" + std::to_string(i) + ")"},
                             {"answer", p.answer}}
                  .dump()
           << "\n";
    }
  }
  const std::string common = "eval --model " + (dir / "model") + " --data " +
                             (dir / "gsm8k.jsonl") + " -q --batch 1 --max-new-tokens 64 --out ";
  ASSERT_EQ(run_cli(common + (dir / "reference.jsonl"), dir).exit_code, 0);

  std::vector<std::string> args = {
      TREERPO_CLI, "eval", "--model",          dir / "model", "--data", dir / "gsm8k.jsonl", "-q",
      "--batch",   "1",    "--max-new-tokens", "64",          "--out",  dir / "out.jsonl"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  // Wait for the first finished problem, then interrupt.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (sorted_lines(dir / "out.jsonl").empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "finished before the signal";
  const size_t before = sorted_lines(dir / "out.jsonl").size();
  ASSERT_GE(before, 1u);
  ASSERT_LT(before, static_cast<size_t>(kProblems));

  const Result resumed = run_cli(common + (dir / "out.jsonl"), dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto summary = nlohmann::json::parse(resumed.out);
  EXPECT_EQ(summary["problems"], kProblems);
  // A line torn by the signal is cut off and its problem redone.
  EXPECT_LE(summary["resumed"].get<size_t>(), before);
  EXPECT_GE(summary["resumed"].get<size_t>() + 1, before);
  EXPECT_EQ(sorted_lines(dir / "out.jsonl"), sorted_lines(dir / "reference.jsonl"));
}

} // namespace
