#pragma once
// Confidence intervals for an accuracy measured on n problems.
#include <cstdint>

namespace treerpo::eval {

struct Interval {
  double low = 0, high = 0;
};

// Wilson score interval for `correct` successes out of `n` (z = 1.96: 95%). Unlike the normal
// approximation it stays inside [0, 1] and is not degenerate at 0 or n successes. n = 0: {0, 0}.
Interval wilson_interval(int64_t correct, int64_t n, double z = 1.959963984540054);

} // namespace treerpo::eval
