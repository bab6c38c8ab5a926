#include <cmath>

#include <gtest/gtest.h>

#include "treerpo/train/schedule.h"

using treerpo::train::learning_rate;

TEST(Schedule, WarmupRisesLinearlyThenHoldsConstant) {
  EXPECT_DOUBLE_EQ(learning_rate(1.0, "constant", 4, 0, 100), 0.25);
  EXPECT_DOUBLE_EQ(learning_rate(1.0, "constant", 4, 3, 100), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(1.0, "constant", 4, 50, 100), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(2e-6, "constant", 0, 0, 10), 2e-6);
}

TEST(Schedule, CosineDecaysFromPeakToZeroAfterWarmup) {
  // 10 warm-up steps, 90 decay steps: halfway through the decay the lr is half the peak.
  EXPECT_DOUBLE_EQ(learning_rate(1.0, "cosine", 10, 10, 100), 1.0);
  EXPECT_NEAR(learning_rate(1.0, "cosine", 10, 55, 100), 0.5, 1e-12);
  EXPECT_NEAR(learning_rate(1.0, "cosine", 10, 100, 100), 0.0, 1e-12);
  EXPECT_NEAR(learning_rate(1.0, "cosine", 0, 25, 100), 0.5 * (1 + std::cos(M_PI / 4)), 1e-12);
}
