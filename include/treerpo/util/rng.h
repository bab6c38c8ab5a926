#pragma once
// Small counter-based randomness: the same numbers on every platform and standard library, and a
// stream is fully described by its seed, so a resumed run needs no saved generator state.
#include <cstdint>
#include <numeric>
#include <vector>

namespace treerpo {

// SplitMix64 (Steele, Lea, Flood 2014): a fast 64-bit generator with a one-word state.
class SplitMix64 {
public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by rejection, so no value is favoured.
  uint64_t below(uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x = next();
    while (x >= limit) x = next();
    return x % n;
  }

private:
  uint64_t state_;
};

// A seed for stream `index` of `seed` (e.g. the rollout of step N), decorrelated from its
// neighbours.
inline uint64_t derive_seed(uint64_t seed, uint64_t index) {
  SplitMix64 mix(seed ^ (index * 0xD1B54A32D192ED03ULL));
  return mix.next();
}

// A Fisher-Yates permutation of 0..n-1 drawn from `seed`.
inline std::vector<int64_t> permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  SplitMix64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

} // namespace treerpo
