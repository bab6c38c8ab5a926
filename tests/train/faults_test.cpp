// Faults on disk around checkpoints: a damaged checkpoint (a flipped byte in tensor data, a
// truncated file) is found by its checksums, skipped on resume for the newest intact one and
// refused by `eval --model`; a disk that fills during a checkpoint write stops the run with one
// line and exit 1, the previous checkpoint intact and the run resumable from it.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "../common/temp_dir.h"
#include "treerpo/util/checksums.h"

namespace fs = std::filesystem;

namespace {

fs::path scratch() {
  static const fs::path dir = treerpo::testing::make_process_scratch("treerpo_faults_");
  return dir;
}

struct Result {
  int exit_code = -1;
  std::string err;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `prefix treerpo-train args` through bash; stderr is kept.
Result run_cli(const std::string& args, const std::string& prefix = "") {
  const fs::path err = scratch() / "stderr.txt";
  const std::string cmd =
      "bash -c \"" + prefix + " " + TREERPO_CLI + " " + args + "\" >/dev/null 2>" + err.string();
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(err)};
}

const fs::path& workspace() {
  static fs::path ws = [] {
    fs::path dir = scratch() / "ws";
    EXPECT_EQ(run_cli("demo-data " + dir.string() + " --train 32 --test 4 --hidden 32 --layers 2")
                  .exit_code,
              0);
    return dir;
  }();
  return ws;
}

// A demo SFT run of `steps` steps with a checkpoint after every step (the last three kept).
std::string sft(const fs::path& run_dir, int steps) {
  return "-q sft --config " + std::string(TREERPO_SOURCE_DIR) +
         "/configs/demo.yaml --set model.path=" + (workspace() / "model").string() +
         " --set sft.data=" + (workspace() / "data/train.jsonl").string() +
         " --set checkpoint.dir=" + run_dir.string() + " --set sft.steps=" + std::to_string(steps) +
         " --set sft.batch_size=4 --set checkpoint.every=1 --set checkpoint.keep=3";
}

fs::path step(const fs::path& run_dir, int n) {
  return run_dir / "checkpoints" / ("step-" + std::to_string(n));
}

void flip_last_byte(const fs::path& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-1, std::ios::end);
  const char c = static_cast<char>(f.get() ^ 0x01);
  f.seekp(-1, std::ios::end);
  f.put(c);
}

int lines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

} // namespace

TEST(Faults, DamagedCheckpointsAreSkippedOnResumeForTheNewestIntactOne) {
  const fs::path run = scratch() / "damaged";
  ASSERT_EQ(run_cli(sft(run, 6)).exit_code, 0) << read_file(scratch() / "stderr.txt");
  const std::string expected = read_file(step(run, 6) / "model.safetensors");
  // The last byte of model.safetensors is tensor data; optimizer.state loses its last byte.
  flip_last_byte(step(run, 6) / "model.safetensors");
  fs::resize_file(step(run, 5) / "optimizer.state",
                  fs::file_size(step(run, 5) / "optimizer.state") - 1);

  const Result resumed = run_cli(sft(run, 6).substr(3)); // without -q: the warnings show
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("skipping damaged checkpoint " + step(run, 6).string() +
                             ": model.safetensors: SHA-256 differs from SHA256SUMS"),
            std::string::npos)
      << resumed.err;
  EXPECT_NE(resumed.err.find("skipping damaged checkpoint " + step(run, 5).string() +
                             ": optimizer.state: SHA-256 differs"),
            std::string::npos)
      << resumed.err;
  EXPECT_NE(resumed.err.find("resuming sft from " + step(run, 4).string() + " (step 4)"),
            std::string::npos)
      << resumed.err;
  // Resuming from step 4 is as good as never stopping: bitwise the same final weights.
  EXPECT_EQ(read_file(step(run, 6) / "model.safetensors"), expected);
  EXPECT_EQ(treerpo::checksum_problem(step(run, 6).string()), std::nullopt);
}

TEST(Faults, EveryCheckpointDamagedIsRefusedRatherThanStartingOver) {
  const fs::path run = scratch() / "all-damaged";
  ASSERT_EQ(run_cli(sft(run, 1)).exit_code, 0);
  flip_last_byte(step(run, 1) / "trainer_state.json");
  const Result r = run_cli(sft(run, 2));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("no intact checkpoint to resume from"), std::string::npos) << r.err;
}

TEST(Faults, EvalOnADamagedCheckpointExitsTwoWithOneLine) {
  const fs::path run = scratch() / "eval-damaged";
  ASSERT_EQ(run_cli(sft(run, 1)).exit_code, 0);
  const std::string eval = "eval --model " + step(run, 1).string() + " --data " +
                           (workspace() / "data/test.jsonl").string() +
                           " --limit 1 --max-new-tokens 4";
  ASSERT_EQ(run_cli(eval).exit_code, 0) << read_file(scratch() / "stderr.txt");
  flip_last_byte(step(run, 1) / "model.safetensors");
  const Result r = run_cli(eval);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "error: " + step(run, 1).string() +
                       ": damaged checkpoint: model.safetensors: SHA-256 differs from SHA256SUMS "
                       "(truncated or altered); use another checkpoint (or delete SHA256SUMS to "
                       "load it unchecked)\n");
}

// The file-size limit (prlimit --fsize, SIGXFSZ ignored so write() fails with EFBIG) is a full disk
// for the one process, without root or a mount: the checkpoint write fails part-way.
TEST(Faults, DiskFullDuringACheckpointStopsWithOneLineAndTheRunResumes) {
  const fs::path run = scratch() / "disk-full";
  ASSERT_EQ(run_cli(sft(run, 2)).exit_code, 0);
  const auto weights = fs::file_size(step(run, 2) / "model.safetensors");
  const std::string limit =
      "trap '' XFSZ; exec prlimit --fsize=" + std::to_string(weights / 2) + " --";
  // --force: the longer run is a changed config (sft.steps), accepted knowingly.
  const Result full = run_cli(sft(run, 4) + " --force", limit);
  EXPECT_EQ(full.exit_code, 1);
  EXPECT_EQ(lines(full.err), 1) << full.err;
  EXPECT_EQ(full.err.rfind(
                "error: " + (run / "checkpoints").string() + ": checkpoint step-3 not saved (", 0),
            0U)
      << full.err;
  EXPECT_NE(full.err.find("; free disk space and re-run: it resumes from step-2\n"),
            std::string::npos)
      << full.err;
  // Nothing half-written stays behind, and step 2 is as it was.
  EXPECT_FALSE(fs::exists(run / "checkpoints/.tmp-step-3"));
  EXPECT_FALSE(fs::exists(step(run, 3)));
  EXPECT_EQ(treerpo::checksum_problem(step(run, 2).string()), std::nullopt);

  const Result resumed = run_cli(sft(run, 4).substr(3) + " --force");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resuming sft from " + step(run, 2).string()), std::string::npos);
  EXPECT_TRUE(fs::exists(step(run, 4) / "SHA256SUMS"));
}
