// trainer_state.json round-trips every field resume needs, and malformed states are bad input.
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "../common/temp_dir.h"
#include "treerpo/train/checkpoint.h"
#include "treerpo/util/error.h"

namespace {

using treerpo::testing::TempDir;
using treerpo::train::read_trainer_state;
using treerpo::train::TrainerState;
using treerpo::train::write_trainer_state;

// Found reading the reader for its fuzz target (tests/fuzz/trainer_state.cpp): sampled_tokens was
// written but not read back, so train.token_budget restarted its count at every resume.
TEST(TrainerState, EveryFieldRoundTrips) {
  TempDir dir;
  write_trainer_state(dir.str(), {"rl", 50, 7, "8c1f0e3f6a2b4d59", 10240, "AVX2"});
  const TrainerState s = read_trainer_state(dir.str());
  EXPECT_EQ(s.kind, "rl");
  EXPECT_EQ(s.step, 50);
  EXPECT_EQ(s.seed, 7);
  EXPECT_EQ(s.config_hash, "8c1f0e3f6a2b4d59");
  EXPECT_EQ(s.sampled_tokens, 10240);
  EXPECT_EQ(s.cpu_capability, "AVX2");
  // A CUDA run's state has none; neither has a state of an earlier version.
  write_trainer_state(dir.str(), {"rl", 50, 7, "8c1f0e3f6a2b4d59", 10240, ""});
  std::ifstream in(dir / "trainer_state.json");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  EXPECT_EQ(text.find("cpu_capability"), std::string::npos) << text;
  EXPECT_EQ(read_trainer_state(dir.str()).cpu_capability, "");
}

TEST(TrainerState, MalformedStatesAreBadInput) {
  TempDir dir;
  for (const char* text :
       {"", "[]", R"({"kind": "rl", "step": 1, "seed": 7})",
        R"({"kind": "rl", "step": "1", "seed": 7, "config_hash": ""})",
        R"({"kind": "rl", "step": -1, "seed": 7, "config_hash": ""})",
        R"({"kind": "rl", "step": 1, "seed": 7, "config_hash": "", "sampled_tokens": "x"})",
        R"({"kind": "rl", "step": 1, "seed": 7, "config_hash": "", "cpu_capability": 2})"}) {
    std::ofstream(dir / "trainer_state.json", std::ios::trunc) << text;
    try {
      read_trainer_state(dir.str());
      ADD_FAILURE() << "accepted " << text;
    } catch (const treerpo::Error& e) {
      EXPECT_EQ(e.kind(), treerpo::ErrorKind::BadInput) << text;
    }
  }
}

// Found by a long fuzzing run (tests/fuzz/trainer_state.cpp, corpus seed step-beyond-int64): a step
// of 4.4e51 parses as a double, and get<int64_t> of it was undefined behaviour (UBSan); a
// fractional step was silently truncated. Each is now one bad_input line naming the key.
TEST(TrainerState, NumbersThatAreNotInt64IntegersAreBadInput) {
  TempDir dir;
  for (const char* step :
       {"4444444444444444444444444444444444444449", "2.5", "18446744073709551615"}) {
    std::ofstream(dir / "trainer_state.json", std::ios::trunc)
        << R"({"kind": "rl", "seed": 7, "config_hash": "", "step": )" << step << "}";
    try {
      read_trainer_state(dir.str());
      ADD_FAILURE() << "accepted step " << step;
    } catch (const treerpo::Error& e) {
      EXPECT_EQ(e.kind(), treerpo::ErrorKind::BadInput) << step;
      EXPECT_NE(std::string(e.what()).find("\"step\" is not an integer"), std::string::npos)
          << e.what();
    }
  }
}

} // namespace

namespace {

TEST(ConfigHash, TheCollectiveTimeoutMayChangeOnResumeButNotTheLearningRate) {
  const treerpo::Config base = treerpo::load_config("", {});
  const treerpo::Config longer = treerpo::load_config("", {"distributed.timeout_s=60"});
  const treerpo::Config faster = treerpo::load_config("", {"train.lr=0.5"});
  EXPECT_EQ(treerpo::train::config_hash(base), treerpo::train::config_hash(longer));
  EXPECT_NE(treerpo::train::config_hash(base), treerpo::train::config_hash(faster));
}

TEST(ConfigHash, TheKvPoolAndTheMemoryCapMayChangeOnResumeButNotTheDecodeAttention) {
  const treerpo::Config base = treerpo::load_config("", {});
  const treerpo::Config storage = treerpo::load_config(
      "", {"rollout.kv_cache_tokens=65536", "rollout.kv_block_tokens=4", "model.memory_gb=20"});
  const treerpo::Config kernel =
      treerpo::load_config("", {"rollout.decode_attention=paged_kernel"});
  EXPECT_EQ(treerpo::train::config_hash(base), treerpo::train::config_hash(storage));
  // The kernel rounds differently in the last bits: a resumed run would not be bitwise the same.
  EXPECT_NE(treerpo::train::config_hash(base), treerpo::train::config_hash(kernel));
}

} // namespace
