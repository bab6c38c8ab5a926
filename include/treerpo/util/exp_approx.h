#pragma once
// exp(x) in float32 from arithmetic alone, so that a loop of calls vectorises on any x86-64 (a call
// of libm's expf does not: the paged decode attention's CPU path spent a third of its time in
// them). The standard method: x = n ln 2 + r with n = round(x / ln 2) and |r| <= ln 2 / 2, exp(r)
// by the degree-7 minimax polynomial of Cephes' expf (relative error below 2e-7 on that interval),
// then 2^n made from its bits. Within 1 ulp of the exact exp for x in [-87, 88] (0.99 at worst on a
// grid of 1e-4; tests/util/exp_approx_test.cpp holds it to 2^-22 relative); below -87.3 (where
// std::exp goes subnormal) it gives 0, above 88 it gives exp(88) (std::exp overflows at 88.7); NaN
// stays NaN.

#include <cstdint>
#include <cstring>

namespace treerpo {

inline float exp_approx(float x) {
  constexpr float kLowest = -87.33654f; // log(FLT_MIN): below it the result is 0
  constexpr float kHighest = 88.0f;     // keeps n <= 127, so 2^n is a normal float
  constexpr float kLog2e = 1.44269504088896341f;
  // ln 2 split in two, the first with few mantissa bits, so that n * kLn2Hi is exact.
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  // Adding 1.5 * 2^23 rounds a float of magnitude below 2^22 to an integer (round to nearest even).
  constexpr float kRound = 12582912.0f;
  const float xc = x < kLowest ? kLowest : (x > kHighest ? kHighest : x); // NaN passes through
  const float n = (xc * kLog2e + kRound) - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // n is within [-126, 127] (0 for NaN, whose p is NaN anyway), so 2^n is a normal float.
  const float whole = n == n ? n : 0.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(whole) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float y = p * scale;
  return x < kLowest ? 0.0f : y;
}

} // namespace treerpo
