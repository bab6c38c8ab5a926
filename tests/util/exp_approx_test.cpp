// exp_approx against the C library's exp in double precision: every float of [-87, 88] on a fine
// grid within 2 ulp (as a relative error, 2 * 2^-23), the edges it states (0 below log(FLT_MIN),
// exp(88) above 88, NaN stays NaN) and a loop of calls equal to the calls one by one.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "treerpo/util/exp_approx.h"

namespace treerpo {
namespace {

constexpr double kTwoUlp = 2.0 / (1 << 23);

TEST(ExpApprox, WithinTwoUlpOfExpOverItsRange) {
  double worst = 0.0;
  float worst_x = 0.0f;
  // 1.75 million points, one every 1e-4 from -87 to 88.
  for (int64_t i = -870000; i <= 880000; ++i) {
    const float x = static_cast<float>(i) * 1e-4f;
    const double want = std::exp(static_cast<double>(x));
    const double error = std::abs(static_cast<double>(exp_approx(x)) - want) / want;
    if (error > worst) worst = error, worst_x = x;
  }
  EXPECT_LT(worst, kTwoUlp) << "at x = " << worst_x;
  EXPECT_EQ(exp_approx(0.0f), 1.0f);
  EXPECT_EQ(exp_approx(-0.0f), 1.0f);
}

TEST(ExpApprox, EdgesAreTheStatedOnes) {
  // Below log(FLT_MIN) the C library goes subnormal; exp_approx gives 0.
  EXPECT_EQ(exp_approx(-87.4f), 0.0f);
  EXPECT_EQ(exp_approx(-200.0f), 0.0f);
  EXPECT_EQ(exp_approx(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(exp_approx(-std::numeric_limits<float>::max()), 0.0f);
  // Just above it, a normal float near FLT_MIN.
  const float near_min = exp_approx(-87.33f);
  EXPECT_NEAR(near_min / std::exp(static_cast<double>(-87.33f)), 1.0, kTwoUlp);
  EXPECT_GE(near_min, std::numeric_limits<float>::min());
  // Above 88 it saturates at exp(88), never inf.
  const float at88 = exp_approx(88.0f);
  EXPECT_NEAR(at88 / std::exp(88.0), 1.0, kTwoUlp);
  EXPECT_EQ(exp_approx(88.5f), at88);
  EXPECT_EQ(exp_approx(std::numeric_limits<float>::infinity()), at88);
  EXPECT_TRUE(std::isnan(exp_approx(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(exp_approx(-std::numeric_limits<float>::quiet_NaN())));
}

// The loop the attention runs: the compiler may vectorise it, which must not change a value.
TEST(ExpApprox, ALoopOfCallsEqualsTheCallsOneByOne) {
  std::vector<float> xs;
  for (int i = 0; i < 1003; ++i) xs.push_back(-90.0f + 0.179f * static_cast<float>(i));
  xs[7] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> looped(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) looped[i] = exp_approx(xs[i]);
  for (size_t i = 0; i < xs.size(); ++i) {
    volatile float x = xs[i]; // one call at a time
    const float one = exp_approx(x);
    if (std::isnan(one)) {
      EXPECT_TRUE(std::isnan(looped[i])) << i;
    } else {
      EXPECT_EQ(looped[i], one) << i;
    }
  }
}

} // namespace
} // namespace treerpo
