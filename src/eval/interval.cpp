#include "treerpo/eval/interval.h"

#include <algorithm>
#include <cmath>

namespace treerpo::eval {

Interval wilson_interval(int64_t correct, int64_t n, double z) {
  if (n <= 0) return {};
  const double nn = static_cast<double>(n);
  const double p = static_cast<double>(correct) / nn;
  const double z2 = z * z;
  const double denominator = 1.0 + z2 / nn;
  const double center = (p + z2 / (2.0 * nn)) / denominator;
  const double half = z * std::sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / denominator;
  // At 0 or n successes the bound is exactly 0 or 1; the subtraction would leave rounding noise.
  return {correct <= 0 ? 0.0 : std::max(0.0, center - half),
          correct >= n ? 1.0 : std::min(1.0, center + half)};
}

} // namespace treerpo::eval
