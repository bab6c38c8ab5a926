// trainer_state.json: what a resumed run continues from.
#include <gtest/gtest.h>

#include "../common/temp_dir.h"
#include "treerpo/train/checkpoint.h"

namespace {

TEST(TrainerState, RoundTripsEveryFieldIncludingTheSampledTokens) {
  treerpo::testing::TempDir dir;
  // The sampled-token count is what train.token_budget stops at: a resumed baseline that lost it
  // would train past its budget.
  const treerpo::train::TrainerState written{"rl", 17, 7, "00ff00ff00ff00ff", 123456789012};
  treerpo::train::write_trainer_state(dir.str(), written);
  const treerpo::train::TrainerState read = treerpo::train::read_trainer_state(dir.str());
  EXPECT_EQ(read.kind, "rl");
  EXPECT_EQ(read.step, 17);
  EXPECT_EQ(read.seed, 7);
  EXPECT_EQ(read.config_hash, "00ff00ff00ff00ff");
  EXPECT_EQ(read.sampled_tokens, 123456789012);
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

} // namespace
