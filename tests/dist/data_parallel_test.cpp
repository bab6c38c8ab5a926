// Data-parallel jobs of the real CLI on a demo-size model (Gloo on the CPU): after N steps the
// weights equal one process's with the same global batch, for SFT and RL, every loss aggregation,
// 2 and 3 ranks; ranks that disagree are refused; a killed rank stops the job naming it with the
// last checkpoint intact; runs resume across world sizes; eval splits and gathers.
//
// Why not bitwise: one process accumulates the step's gradient tree after tree in one sum; a job
// sums each rank's partial sum over ranks, a different order of float additions (~1e-7 relative);
// each rank's batched forward also has fewer rows. The trees themselves are the same (each draw
// derives from the tree's index in the whole batch).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "../common/loopback_port.h"
#include "../common/temp_dir.h"
#include "treerpo/model/qwen2.h"

extern char** environ;
namespace fs = std::filesystem;

namespace {

fs::path scratch() {
  static const fs::path dir = treerpo::testing::make_process_scratch("treerpo_dist_");
  return dir;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Starts treerpo-train with `args` (stdout to `out`, stderr to `err`) and extra environment.
pid_t spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err,
            const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv_s = {TREERPO_CLI};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) env_s.emplace_back(*e);
  // One thread a process: the suite's processes share two cores with each other.
  env_s.emplace_back("OMP_NUM_THREADS=1");
  env_s.insert(env_s.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// The exit code of `pid` (minus the signal that killed it). A process still running after
// `limit` is killed and the test fails: a hung rank stops this test, not the whole suite.
int wait_for(pid_t pid, std::chrono::seconds limit = std::chrono::seconds(600)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "process " << pid << " still ran after " << limit.count() << " s; killed";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

// MASTER_PORT=<a port the kernel reports free on 127.0.0.1>, for ranks started by hand.
std::string free_master_port() {
  return "MASTER_PORT=" + std::to_string(treerpo::testing::free_port());
}

// Ranks started by hand wait this long for each other, not the default half hour.
const std::string kShortTimeout = "distributed.timeout_s=60";

fs::path err_file() {
  return scratch() / "stderr.txt";
}

// Runs to completion; `ranks` > 1 goes through `launch`.
int run_cli(std::vector<std::string> args, int ranks = 1) {
  if (ranks > 1) args.insert(args.begin(), {"launch", "--nproc", std::to_string(ranks), "--"});
  return wait_for(spawn(args, scratch() / "stdout.txt", err_file()));
}

const fs::path& workspace() {
  static fs::path ws = [] {
    fs::path dir = scratch() / "ws";
    EXPECT_EQ(run_cli({"--quiet", "demo-data", dir.string(), "--train", "64", "--test", "16",
                       "--hidden", "32", "--layers", "2"}),
              0)
        << read_file(err_file());
    return dir;
  }();
  return ws;
}

std::string config(const std::string& name) {
  return std::string(TREERPO_SOURCE_DIR) + "/configs/" + name;
}

std::vector<std::string> sets(std::vector<std::string> args, const std::vector<std::string>& keys) {
  for (const auto& k : keys) args.insert(args.end(), {"--set", k});
  return args;
}

std::vector<std::string> sft_args(const fs::path& run_dir, int steps) {
  return sets({"--quiet", "sft", "--config", config("demo.yaml")},
              {"model.path=" + (workspace() / "model").string(),
               "sft.data=" + (workspace() / "data/train.jsonl").string(),
               "checkpoint.dir=" + run_dir.string(), "sft.steps=" + std::to_string(steps),
               "sft.batch_size=5", "sft.lr_schedule=constant", "checkpoint.every=1"});
}

// A model with some correct answers (so RL has signal): SFT of the demo-size model.
const fs::path& sft_model() {
  static fs::path model = [] {
    fs::path run = scratch() / "sft-base";
    std::vector<std::string> args = sft_args(run, 150);
    args = sets(args, {"sft.batch_size=16", "sft.lr=3.0e-3", "checkpoint.every=0"});
    EXPECT_EQ(run_cli(args), 0) << read_file(err_file());
    return run / "checkpoints" / "step-150";
  }();
  return model;
}

std::vector<std::string> rl_args(const std::string& cfg, const fs::path& run_dir, int steps,
                                 const std::vector<std::string>& extra = {}) {
  auto args =
      sets({"--quiet", "train", "--config", config(cfg)},
           {"model.path=" + sft_model().string(),
            "data.train=" + (workspace() / "data/train.jsonl").string(),
            "checkpoint.dir=" + run_dir.string(), "train.steps=" + std::to_string(steps),
            "train.prompts_per_step=4", "train.warmup_steps=0", "checkpoint.every=1",
            "checkpoint.keep=20", "log.render_trees_every=0", "rollout.max_answer_tokens=40"});
  return sets(args, extra);
}

std::vector<torch::Tensor> weights(const fs::path& dir) {
  return treerpo::model::Qwen2::load(dir.string(), torch::kFloat32, torch::kCPU).parameters();
}

fs::path step_dir(const fs::path& run_dir, int step) {
  return run_dir / "checkpoints" / ("step-" + std::to_string(step));
}

double max_difference(const fs::path& a, const fs::path& b) {
  auto wa = weights(a), wb = weights(b);
  double worst = 0;
  for (size_t i = 0; i < wa.size(); ++i)
    worst = std::max(worst, (wa[i] - wb[i]).abs().max().item<double>());
  return worst;
}

constexpr double kTolerance = 1e-6;

// `extra` settings of `cfg` trained for 3 steps by one process and by each of `ranks`: the same
// weights within kTolerance, and not trivially (the weights moved).
void expect_ranks_match_one_process(const std::string& name, const std::string& cfg,
                                    const std::vector<std::string>& extra,
                                    const std::vector<int>& ranks) {
  const fs::path one = scratch() / (name + "-1");
  ASSERT_EQ(run_cli(rl_args(cfg, one, 3, extra)), 0) << read_file(err_file());
  EXPECT_GT(max_difference(step_dir(one, 3), sft_model()), 1e-5) << name << ": no update";
  for (int n : ranks) {
    const fs::path many = scratch() / (name + "-" + std::to_string(n));
    ASSERT_EQ(run_cli(rl_args(cfg, many, 3, extra), n), 0) << read_file(err_file());
    EXPECT_LE(max_difference(step_dir(one, 3), step_dir(many, 3)), kTolerance)
        << name << " on " << n << " ranks";
    // Rank 0 alone wrote the metrics: one line a step.
    std::ifstream metrics(many / "metrics.jsonl");
    int lines = 0;
    for (std::string line; std::getline(metrics, line);) ++lines;
    EXPECT_EQ(lines, 3);
  }
}

class RemoveScratch : public ::testing::Environment {
public:
  void TearDown() override { fs::remove_all(scratch()); }
};
const auto* const kRemoveScratch = ::testing::AddGlobalTestEnvironment(new RemoveScratch);

TEST(DataParallel, SftOnTwoRanksEqualsOneProcess) {
  const fs::path one = scratch() / "sft-1", two = scratch() / "sft-2";
  ASSERT_EQ(run_cli(sft_args(one, 4)), 0) << read_file(err_file());
  ASSERT_EQ(run_cli(sft_args(two, 4), 2), 0) << read_file(err_file());
  EXPECT_LE(max_difference(step_dir(one, 4), step_dir(two, 4)), kTolerance);
  EXPECT_GT(max_difference(step_dir(one, 4), workspace() / "model"), 1e-4);
}

// The "prompt" of each tree in RUN_DIR/trees/step-N.jsonl, in order.
std::vector<std::string> logged_prompts(const fs::path& run_dir, int step) {
  std::vector<std::string> prompts;
  std::ifstream in(run_dir / "trees" / ("step-" + std::to_string(step) + ".jsonl"));
  for (std::string line; std::getline(in, line);)
    prompts.push_back(nlohmann::json::parse(line).at("prompt").get<std::string>());
  return prompts;
}

TEST(DataParallel, TreeRpoGroupTokenMeanOnTwoAndThreeRanksEqualsOneProcess) {
  // 4 prompts a step: shares 2 + 2 and 2 + 1 + 1; the trees of step 3 logged.
  expect_ranks_match_one_process("treerpo", "demo.yaml", {"log.render_trees_every=3"}, {2, 3});
  // Rank 0 logs every rank's trees, in prompt order, as one process does.
  const auto one = logged_prompts(scratch() / "treerpo-1", 3);
  EXPECT_EQ(one.size(), 4u);
  EXPECT_EQ(logged_prompts(scratch() / "treerpo-2", 3), one);
  EXPECT_EQ(logged_prompts(scratch() / "treerpo-3", 3), one);
}

TEST(DataParallel, ARankWithoutPromptsStillTakesPartInTheStep) {
  // 2 prompts over 3 ranks: rank 2 grows nothing, contributes zero gradients and counts.
  expect_ranks_match_one_process("treerpo-empty-share", "demo.yaml", {"train.prompts_per_step=2"},
                                 {3});
}

TEST(DataParallel, TreeRpoTokenMeanOnTwoRanksEqualsOneProcess) {
  expect_ranks_match_one_process("treerpo-token", "demo.yaml", {"train.loss_agg=token-mean"}, {2});
}

TEST(DataParallel, GrpoSeqMeanTokenMeanOnTwoAndThreeRanksEqualsOneProcess) {
  expect_ranks_match_one_process("grpo", "demo-grpo.yaml", {"rollout.samples=4"}, {2, 3});
}

TEST(DataParallel, GrpoTokenMeanAndDrGrpoAndGroupTokenMeanOnTwoRanksEqualOneProcess) {
  expect_ranks_match_one_process("dapo", "demo-grpo.yaml",
                                 {"rollout.samples=4", "train.preset=dapo"}, {2});
  expect_ranks_match_one_process("dr-grpo", "demo-grpo.yaml",
                                 {"rollout.samples=4", "train.preset=dr-grpo"}, {2});
  expect_ranks_match_one_process(
      "grpo-group", "demo-grpo.yaml",
      {"rollout.samples=4", "train.preset=none", "train.loss_agg=group-token-mean"}, {2});
}

TEST(DataParallel, RanksWithDifferentConfigsAreRefused) {
  const fs::path run = scratch() / "refused";
  const std::string port = free_master_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r) {
    auto args = rl_args("demo.yaml", run, 1,
                        {r == 1 ? "train.lr=2.0e-3" : "train.lr=1.0e-3", kShortTimeout});
    pids.push_back(spawn(
        args, scratch() / "refused.out", scratch() / ("refused-" + std::to_string(r) + ".err"),
        {"RANK=" + std::to_string(r), "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", port}));
  }
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(wait_for(pids[static_cast<size_t>(r)]), 2);
    const std::string err = read_file(scratch() / ("refused-" + std::to_string(r) + ".err"));
    EXPECT_NE(err.find("rank 1's configuration differs from rank 0's: `  lr: 0.002` vs rank 0's "
                       "`  lr: 0.001`"),
              std::string::npos)
        << err;
  }
  EXPECT_FALSE(fs::exists(run / "checkpoints" / "step-1"));
}

TEST(DataParallel, RanksStartingFromOtherWeightsAreRefused) {
  // Same config, but rank 1 resumes another checkpoint: the weights' digests differ.
  const fs::path run = scratch() / "two-checkpoints";
  ASSERT_EQ(run_cli(rl_args("demo.yaml", run, 2)), 0) << read_file(err_file());
  const std::string port = free_master_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r) {
    auto args = rl_args("demo.yaml", run, 2, {kShortTimeout});
    args.insert(args.end(), {"--resume", step_dir(run, r + 1).string()});
    pids.push_back(spawn(
        args, scratch() / "weights.out", scratch() / ("weights-" + std::to_string(r) + ".err"),
        {"RANK=" + std::to_string(r), "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", port}));
  }
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(wait_for(pids[static_cast<size_t>(r)]), 2);
    const std::string err = read_file(scratch() / ("weights-" + std::to_string(r) + ".err"));
    EXPECT_NE(err.find("rank 1 loaded other weights than rank 0"), std::string::npos) << err;
  }
}

// The child of `launcher` whose environment says RANK=rank.
pid_t rank_pid(pid_t launcher, int rank) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    std::ifstream children(fs::path("/proc") / std::to_string(launcher) / "task" /
                           std::to_string(launcher) / "children");
    for (pid_t child; children >> child;) {
      const std::string env = read_file(fs::path("/proc") / std::to_string(child) / "environ");
      if (env.find("RANK=" + std::to_string(rank) + '\0') != std::string::npos &&
          env.find("LOCAL_RANK=" + std::to_string(rank) + '\0') != std::string::npos)
        return child;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

void wait_until_exists(const fs::path& path) {
  for (int i = 0; i < 6000 && !fs::exists(path); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fs::exists(path)) << path;
}

TEST(DataParallel, AKilledRankStopsTheJobNamingItAndItsCheckpointResumesOnOneRank) {
  const fs::path straight = scratch() / "straight", run = scratch() / "killed";
  ASSERT_EQ(run_cli(rl_args("demo.yaml", straight, 5)), 0) << read_file(err_file());

  auto args = rl_args("demo.yaml", run, 5);
  args.insert(args.begin(), {"launch", "--nproc", "2", "--grace", "20", "--"});
  const pid_t launcher = spawn(args, scratch() / "killed.out", scratch() / "killed.err");
  wait_until_exists(step_dir(run, 2));
  const pid_t victim = rank_pid(launcher, 1);
  ASSERT_GT(victim, 0);
  kill(victim, SIGKILL);
  EXPECT_EQ(wait_for(launcher), 1);
  const std::string err = read_file(scratch() / "killed.err");
  // Rank 0's own line, then the launcher's.
  EXPECT_NE(err.find("rank 0 of 2:"), std::string::npos) << err;
  EXPECT_NE(err.find("rank 1 stopped"), std::string::npos) << err;
  EXPECT_NE(err.find("launch: rank 1 was killed by signal 9"), std::string::npos) << err;

  // 2 -> 1: the newest checkpoint is whole and one process finishes the same run.
  ASSERT_EQ(run_cli(rl_args("demo.yaml", run, 5)), 0) << read_file(err_file());
  EXPECT_LE(max_difference(step_dir(straight, 5), step_dir(run, 5)), kTolerance);
}

TEST(DataParallel, AOneProcessRunResumesOnTwoRanks) {
  const fs::path straight = scratch() / "straight-1to2", run = scratch() / "resumed-1to2";
  ASSERT_EQ(run_cli(rl_args("demo.yaml", straight, 4)), 0) << read_file(err_file());
  // One process for two steps (then killed), two ranks for the rest.
  const pid_t one = spawn(rl_args("demo.yaml", run, 4), scratch() / "one.out", err_file());
  wait_until_exists(step_dir(run, 2));
  kill(one, SIGKILL);
  wait_for(one);
  ASSERT_EQ(run_cli(rl_args("demo.yaml", run, 4), 2), 0) << read_file(err_file());
  EXPECT_LE(max_difference(step_dir(straight, 4), step_dir(run, 4)), kTolerance);
}

TEST(DataParallel, EvalOnTwoRanksWritesTheSameFileAsOneProcess) {
  auto eval_args = [&](const fs::path& out) {
    return std::vector<std::string>{"--quiet",   "eval",
                                    "--model",   sft_model().string(),
                                    "--data",    (workspace() / "data/test.jsonl").string(),
                                    "--maj",     "3",
                                    "--greedy",  "--batch",
                                    "3",         "--max-new-tokens",
                                    "40",        "--out",
                                    out.string()};
  };
  const fs::path one = scratch() / "eval-1.jsonl", two = scratch() / "eval-2.jsonl";
  ASSERT_EQ(run_cli(eval_args(one)), 0) << read_file(err_file());
  const std::string summary_one = read_file(scratch() / "stdout.txt");
  ASSERT_EQ(run_cli(eval_args(two), 2), 0) << read_file(err_file());
  const std::string summary_two = read_file(scratch() / "stdout.txt");
  EXPECT_EQ(read_file(one), read_file(two));
  // One summary line (rank 0's), with the same accuracies.
  auto without_timing = [](const std::string& s) { return s.substr(0, s.find("\"seconds\"")); };
  EXPECT_EQ(without_timing(summary_one), without_timing(summary_two));
}

} // namespace
