// 95% Wilson score intervals against values worked out by hand from
// (p + z^2/2n ± z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z = 1.959964.
#include <gtest/gtest.h>

#include "treerpo/eval/interval.h"

using treerpo::eval::wilson_interval;

TEST(WilsonInterval, EightOfTen) {
  // p = 0.8: centre 0.99208 / 1.38415 = 0.71674, half-width 0.31362 / 1.38415 = 0.22658.
  const auto ci = wilson_interval(8, 10);
  EXPECT_NEAR(ci.low, 0.49016, 1e-4);
  EXPECT_NEAR(ci.high, 0.94332, 1e-4);
}

TEST(WilsonInterval, StaysInsideUnitIntervalAtTheEdges) {
  // 0 of 10: centre = half-width = 0.19208 / 1.38415 = 0.13877 -> [0, 0.27753].
  const auto none = wilson_interval(0, 10);
  EXPECT_EQ(none.low, 0.0);
  EXPECT_NEAR(none.high, 0.27753, 1e-4);
  const auto all = wilson_interval(10, 10);
  EXPECT_NEAR(all.low, 1.0 - 0.27753, 1e-4);
  EXPECT_EQ(all.high, 1.0);
}

TEST(WilsonInterval, GsmScaleSample) {
  // 1140 of 1319 (86.43%): centre 0.86323, half-width 0.01849.
  const auto ci = wilson_interval(1140, 1319);
  EXPECT_NEAR(ci.low, 0.84475, 1e-4);
  EXPECT_NEAR(ci.high, 0.88172, 1e-4);
}

TEST(WilsonInterval, NoProblemsGivesEmptyInterval) {
  const auto ci = wilson_interval(0, 0);
  EXPECT_EQ(ci.low, 0.0);
  EXPECT_EQ(ci.high, 0.0);
}
