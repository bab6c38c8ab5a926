// Interrupted runs resume to bitwise the same weights as uninterrupted ones (SIGKILL at random
// moments, checkpoint writes included), checkpoints are model folders, and a changed config is
// refused.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <ATen/Version.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/serialize.h>

#include "../common/temp_dir.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/model/safetensors.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/train/memory_plan.h"
#include "treerpo/util/checksums.h"

extern char** environ;
namespace fs = std::filesystem;

namespace {

fs::path scratch() {
  static const fs::path dir = treerpo::testing::make_process_scratch("treerpo_resume_");
  return dir;
}

// Runs treerpo-train with `args`; when kill_after_ms > 0, SIGKILLs it after that long. Returns the
// exit status (or -SIGKILL when killed).
int run_cli(const std::vector<std::string>& args, int kill_after_ms = 0) {
  std::vector<std::string> argv_s = {TREERPO_CLI, "--quiet"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, (scratch() / "stderr.txt").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  if (kill_after_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
    kill(pid, SIGKILL);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return WEXITSTATUS(status);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The "loss" of every line of a run's metrics.jsonl.
std::vector<double> losses(const fs::path& run_dir) {
  std::vector<double> out;
  std::ifstream in(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    out.push_back(nlohmann::json::parse(line)["loss"].get<double>());
  return out;
}

std::vector<torch::Tensor> final_weights(const fs::path& run_dir, int steps) {
  const std::string dir = (run_dir / "checkpoints" / ("step-" + std::to_string(steps))).string();
  return treerpo::model::Qwen2::load(dir, torch::kFloat32, torch::kCPU).parameters();
}

const fs::path& workspace() {
  static fs::path ws = [] {
    fs::path dir = scratch() / "ws";
    EXPECT_EQ(run_cli({"demo-data", dir.string(), "--train", "64", "--test", "8", "--hidden", "32",
                       "--layers", "2"}),
              0);
    return dir;
  }();
  return ws;
}

std::vector<std::string> sft_args(const fs::path& run_dir,
                                  const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"sft",
                                   "--config",
                                   std::string(TREERPO_SOURCE_DIR) + "/configs/demo.yaml",
                                   "--set",
                                   "model.path=" + (workspace() / "model").string(),
                                   "--set",
                                   "sft.data=" + (workspace() / "data/train.jsonl").string(),
                                   "--set",
                                   "checkpoint.dir=" + run_dir.string(),
                                   "--set",
                                   "sft.steps=12",
                                   "--set",
                                   "sft.batch_size=4",
                                   "--set",
                                   "checkpoint.every=1",
                                   "--set",
                                   "checkpoint.keep=2"};
  for (const std::string& setting : extra) args.insert(args.end(), {"--set", setting});
  return args;
}

std::vector<std::string> sft_args(const fs::path& run_dir, const std::string& extra) {
  return sft_args(run_dir, std::vector<std::string>{extra});
}

std::vector<std::string> rl_args(const fs::path& run_dir, const fs::path& model) {
  return {"train",
          "--config",
          std::string(TREERPO_SOURCE_DIR) + "/configs/demo.yaml",
          "--set",
          "model.path=" + model.string(),
          "--set",
          "data.train=" + (workspace() / "data/train.jsonl").string(),
          "--set",
          "checkpoint.dir=" + run_dir.string(),
          "--set",
          "train.steps=6",
          "--set",
          "train.prompts_per_step=2",
          "--set",
          "checkpoint.every=1",
          "--set",
          "checkpoint.keep=2",
          "--set",
          "rollout.max_answer_tokens=24",
          "--set",
          "rollout.max_node_tokens=24"};
}

// Runs `args` to completion, killing it at random moments first; returns the final weights.
std::string weights_after_kills(const std::vector<std::string>& args, const fs::path& run_dir,
                                int steps, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay(150, 900);
  for (int attempt = 0; attempt < 4; ++attempt) run_cli(args, delay(rng));
  EXPECT_EQ(run_cli(args), 0) << read_file(scratch() / "stderr.txt");
  return read_file(run_dir / "checkpoints" / ("step-" + std::to_string(steps)) /
                   "model.safetensors");
}

} // namespace

TEST(Resume, SftKilledAtRandomMomentsEndsWithTheSameWeights) {
  fs::path straight = scratch() / "sft-straight", killed = scratch() / "sft-killed";
  ASSERT_EQ(run_cli(sft_args(straight)), 0) << read_file(scratch() / "stderr.txt");
  std::string expected = read_file(straight / "checkpoints/step-12/model.safetensors");
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(weights_after_kills(sft_args(killed), killed, 12, 1), expected);
  // Only complete checkpoints remain, at most checkpoint.keep of them.
  int kept = 0;
  for (const auto& e : fs::directory_iterator(killed / "checkpoints")) {
    EXPECT_EQ(e.path().filename().string().rfind("step-", 0), 0U) << e.path();
    ++kept;
  }
  EXPECT_LE(kept, 2);
}

TEST(Resume, RlKilledAtRandomMomentsEndsWithTheSameWeights) {
  fs::path sft = scratch() / "rl-base";
  ASSERT_EQ(run_cli(sft_args(sft)), 0);
  fs::path model = sft / "checkpoints/step-12";
  fs::path straight = scratch() / "rl-straight", killed = scratch() / "rl-killed";
  ASSERT_EQ(run_cli(rl_args(straight, model)), 0) << read_file(scratch() / "stderr.txt");
  // The run wrote its memory plan: `treerpo-train plan` of its config and model.
  const treerpo::Config config = treerpo::load_config((straight / "config.yaml").string(), {});
  EXPECT_EQ(read_file(straight / "memory_plan.json"),
            treerpo::train::memory_plan_json(
                config,
                treerpo::model::Qwen2Config::from_json_file((model / "config.json").string()), {}) +
                "\n");
  std::string expected = read_file(straight / "checkpoints/step-6/model.safetensors");
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(weights_after_kills(rl_args(killed, model), killed, 6, 2), expected);
  // The metrics file holds each step once, however often the run was interrupted.
  std::ifstream metrics(killed / "metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line);) ++lines;
  EXPECT_EQ(lines, 6);
}

// One metric of every line of a run's metrics.jsonl.
static std::vector<double> metric(const fs::path& run_dir, const std::string& key) {
  std::vector<double> out;
  std::ifstream in(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    out.push_back(nlohmann::json::parse(line)[key].get<double>());
  return out;
}

// rollout.prompts_in_flight 3 over 6 steps, checkpoints every 3: two blocks, each grown at its
// first step (trees sampled there, none at the next two, which train on trees one and two updates
// old); killed at random moments, the run resumes at a block's start and ends with the same
// weights.
TEST(Resume, PromptsInFlightGrowEachBlockOnceAndResumeToTheSameWeights) {
  fs::path sft = scratch() / "rl-base";
  ASSERT_EQ(run_cli(sft_args(sft)), 0);
  const fs::path model = sft / "checkpoints/step-12";
  auto args = [&](const fs::path& run) {
    std::vector<std::string> a = rl_args(run, model);
    a.insert(a.end(), {"--set", "rollout.prompts_in_flight=3", "--set", "checkpoint.every=3"});
    return a;
  };
  const fs::path straight = scratch() / "flight-straight", killed = scratch() / "flight-killed";
  ASSERT_EQ(run_cli(args(straight)), 0) << read_file(scratch() / "stderr.txt");
  EXPECT_EQ(metric(straight, "rollout/lag"), (std::vector<double>{0, 1, 2, 0, 1, 2}));
  const std::vector<double> generated = metric(straight, "tokens/generated");
  ASSERT_EQ(generated.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(generated[i] > 0, i % 3 == 0) << i;
  EXPECT_FALSE(fs::exists(straight / "checkpoints/step-1"));
  const std::string expected = read_file(straight / "checkpoints/step-6/model.safetensors");
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(weights_after_kills(args(killed), killed, 6, 4), expected);
  EXPECT_EQ(metric(killed, "rollout/lag"), (std::vector<double>{0, 1, 2, 0, 1, 2}));
}

// A stop request (SIGTERM) in a block's first step waits for the block's last step: the block's
// trees were grown by weights no checkpoint keeps. The run checkpoints after step 3, exits 130.
TEST(Resume, PromptsInFlightStopWaitsForTheBlocksEnd) {
  fs::path sft = scratch() / "rl-base";
  ASSERT_EQ(run_cli(sft_args(sft)), 0);
  const fs::path run = scratch() / "flight-stopped";
  std::vector<std::string> args = rl_args(run, sft / "checkpoints/step-12");
  // Long answers: the first block's rollout takes long enough for the signal to land in it.
  args.insert(args.end(), {"--set", "rollout.prompts_in_flight=3", "--set", "checkpoint.every=3",
                           "--set", "rollout.max_answer_tokens=400", "--set",
                           "rollout.max_node_tokens=200", "--set", "train.prompts_per_step=4"});
  std::vector<std::string> argv_s = {TREERPO_CLI, "--quiet"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  // The plan is written just before the signal handlers go in.
  for (int i = 0; i < 6000 && !fs::exists(run / "memory_plan.json"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_EQ(metric(run, "rollout/lag"), (std::vector<double>{0, 1, 2}));
  EXPECT_TRUE(fs::exists(run / "checkpoints/step-3"));
  EXPECT_FALSE(fs::exists(run / "checkpoints/step-1"));
}

// train.optimizer adamw-bf16 on bf16 weights: the stochastic-rounding draws follow (seed, step),
// so a run killed at random moments ends with the same weights as one that was not; it learns.
TEST(Resume, LeanOptimiserKilledAtRandomMomentsEndsWithTheSameWeights) {
  const std::vector<std::string> lean = {"model.dtype=bfloat16", "train.optimizer=adamw-bf16"};
  fs::path straight = scratch() / "lean-straight", killed = scratch() / "lean-killed";
  ASSERT_EQ(run_cli(sft_args(straight, lean)), 0) << read_file(scratch() / "stderr.txt");
  const std::vector<double> loss = losses(straight);
  ASSERT_EQ(loss.size(), 12u);
  EXPECT_LT(loss.back(), loss.front());
  std::string expected = read_file(straight / "checkpoints/step-12/model.safetensors");
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(weights_after_kills(sft_args(killed, lean), killed, 12, 3), expected);
}

TEST(Resume, CheckpointIsAModelFolder) {
  fs::path run = scratch() / "sft-folder";
  ASSERT_EQ(run_cli(sft_args(run)), 0);
  std::string dir = (run / "checkpoints/step-12").string();
  auto model = treerpo::model::Qwen2::load(dir, torch::kFloat32, torch::kCPU);
  auto tok = treerpo::tokenizer::Tokenizer::load(dir);
  EXPECT_EQ(model.config().vocab_size, tok->vocab_size());
  EXPECT_TRUE(fs::exists(run / "checkpoints/step-12/optimizer.state"));
  EXPECT_TRUE(fs::exists(run / "config.yaml"));
}

// A checkpoint an earlier version wrote holds optimizer.pt (a LibTorch archive) instead of
// optimizer.state: resume reads it and continues bitwise as the run that never stopped. A
// checkpoint with neither is refused: fresh moments would silently be another run.
TEST(Resume, CheckpointOfAnEarlierVersionResumesFromItsOptimizerPt) {
  const fs::path run = scratch() / "sft-legacy";
  ASSERT_EQ(run_cli(sft_args(run)), 0) << read_file(scratch() / "stderr.txt");
  const std::string expected = read_file(run / "checkpoints/step-12/model.safetensors");
  fs::remove_all(run / "checkpoints/step-12");
  const fs::path step = run / "checkpoints/step-11";
  const auto state = treerpo::model::SafetensorsFile::open((step / "optimizer.state").string());
  fs::remove(step / "optimizer.state");
  treerpo::write_checksums(step.string());
  EXPECT_EQ(run_cli(sft_args(run)), 2);
  EXPECT_NE(read_file(scratch() / "stderr.txt").find("the checkpoint has no optimizer.state"),
            std::string::npos)
      << read_file(scratch() / "stderr.txt");

  // The layout of the archive earlier versions saved: "steps", then each parameter's moments.
  torch::serialize::OutputArchive archive;
  archive.write("steps", torch::tensor(int64_t{std::stoll(state.metadata().at("steps"))}));
  for (const std::string& name : state.names()) archive.write(name, state.tensor(name));
  archive.save_to((step / "optimizer.pt").string());
  treerpo::write_checksums(step.string());
  ASSERT_EQ(run_cli(sft_args(run)), 0) << read_file(scratch() / "stderr.txt");
  EXPECT_EQ(read_file(run / "checkpoints/step-12/model.safetensors"), expected);
}

// ATen's CPU kernels round their vectorised sums per instruction set (ATEN_CPU_CAPABILITY lowers
// it): a resume under another one goes on, with a warning naming both, since it can no longer be
// bitwise the uninterrupted run; under the same one, no warning.
TEST(Resume, AnotherCpuInstructionSetIsNamedOnResume) {
  const std::string here = at::get_cpu_capability();
  if (here == "DEFAULT") GTEST_SKIP() << "no vectorised kernels here to lower";
  const fs::path run = scratch() / "cpu-capability";
  const auto args = sft_args(run, "sft.steps=3");
  ASSERT_EQ(run_cli(args), 0) << read_file(scratch() / "stderr.txt");
  const auto state =
      nlohmann::json::parse(read_file(run / "checkpoints/step-3/trainer_state.json"));
  EXPECT_EQ(state.at("cpu_capability"), here);
  fs::remove_all(run / "checkpoints/step-3"); // resume at step 2
  setenv("ATEN_CPU_CAPABILITY", "default", 1);
  const int code = run_cli(args);
  unsetenv("ATEN_CPU_CAPABILITY");
  ASSERT_EQ(code, 0) << read_file(scratch() / "stderr.txt");
  const std::string warned = read_file(scratch() / "stderr.txt");
  EXPECT_NE(warned.find("ran with ATen's " + here + " CPU kernels, these run with DEFAULT"),
            std::string::npos)
      << warned;
  const auto lowered =
      nlohmann::json::parse(read_file(run / "checkpoints/step-3/trainer_state.json"));
  EXPECT_EQ(lowered.at("cpu_capability"), "DEFAULT");
  // Resumed from that step-3 under the same instruction set: nothing to say.
  setenv("ATEN_CPU_CAPABILITY", "default", 1);
  const int again = run_cli(args);
  unsetenv("ATEN_CPU_CAPABILITY");
  ASSERT_EQ(again, 0);
  EXPECT_EQ(read_file(scratch() / "stderr.txt").find("CPU kernels"), std::string::npos);
}

TEST(Resume, ChangedConfigIsRefusedUnlessForced) {
  fs::path run = scratch() / "sft-changed";
  ASSERT_EQ(run_cli(sft_args(run)), 0);
  EXPECT_EQ(run_cli(sft_args(run, "sft.lr=0.5")), 2);
  EXPECT_NE(read_file(scratch() / "stderr.txt").find("configuration changed"), std::string::npos);
  std::vector<std::string> forced = sft_args(run, "sft.lr=0.5");
  forced.push_back("--force");
  EXPECT_EQ(run_cli(forced), 0);
}

// The same SFT run with the layers recomputed in the backward: the forward is the same computation
// and the gradients equal to float32 rounding, so losses and final weights agree closely.
TEST(Training, GradientCheckpointingTrainsTheSameModel) {
  fs::path plain = scratch() / "sft-plain", recomputed = scratch() / "sft-recomputed";
  ASSERT_EQ(run_cli(sft_args(plain)), 0) << read_file(scratch() / "stderr.txt");
  ASSERT_EQ(run_cli(sft_args(recomputed, "train.gradient_checkpointing=true")), 0)
      << read_file(scratch() / "stderr.txt");
  const std::vector<double> a = losses(plain), b = losses(recomputed);
  ASSERT_EQ(a.size(), 12u);
  ASSERT_EQ(b.size(), a.size());
  EXPECT_EQ(a[0], b[0]); // step 1 runs on the same weights: the forward is bitwise the same
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4 * std::abs(a[i])) << i;
  const auto wa = final_weights(plain, 12), wb = final_weights(recomputed, 12);
  for (size_t p = 0; p < wa.size(); ++p)
    EXPECT_TRUE(torch::allclose(wa[p], wb[p], 1e-4, 1e-5)) << p;
}

// train.autocast runs the forward's matmuls in bfloat16 over float32 weights: the first loss moves
// by bf16 rounding (so the switch is not ignored) but not by more, and checkpoints stay float32.
TEST(Training, Bf16AutocastTrainsFloat32Weights) {
  fs::path plain = scratch() / "sft-fp32", mixed = scratch() / "sft-autocast";
  ASSERT_EQ(run_cli(sft_args(plain)), 0) << read_file(scratch() / "stderr.txt");
  ASSERT_EQ(run_cli(sft_args(mixed, "train.autocast=true")), 0)
      << read_file(scratch() / "stderr.txt");
  const std::vector<double> a = losses(plain), b = losses(mixed);
  ASSERT_EQ(b.size(), a.size());
  EXPECT_NE(a[0], b[0]);
  EXPECT_NEAR(a[0], b[0], 2e-2 * std::abs(a[0]));
  for (double loss : b) EXPECT_TRUE(std::isfinite(loss));
  EXPECT_LT(b.back(), b.front()); // it still learns
  const auto config = nlohmann::json::parse(read_file(mixed / "checkpoints/step-12/config.json"));
  EXPECT_EQ(config["torch_dtype"], "float32");
  const auto weights = read_file(mixed / "checkpoints/step-12/model.safetensors");
  EXPECT_EQ(weights.find("\"BF16\""), std::string::npos);
}

// bfloat16 weights train (AdamW with Kahan compensation) and are checkpointed as bfloat16.
TEST(Training, Bf16WeightsTrainAndCheckpointAsBf16) {
  fs::path run = scratch() / "sft-bf16";
  ASSERT_EQ(run_cli(sft_args(run, "model.dtype=bfloat16")), 0)
      << read_file(scratch() / "stderr.txt");
  const std::vector<double> loss = losses(run);
  ASSERT_EQ(loss.size(), 12u);
  EXPECT_LT(loss.back(), loss.front());
  const auto config = nlohmann::json::parse(read_file(run / "checkpoints/step-12/config.json"));
  EXPECT_EQ(config["torch_dtype"], "bfloat16");
  // The last step's update reached the weights: they differ from the step before.
  EXPECT_NE(read_file(run / "checkpoints/step-12/model.safetensors"),
            read_file(run / "checkpoints/step-11/model.safetensors"));
}
