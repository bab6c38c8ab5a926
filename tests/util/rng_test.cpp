#include <algorithm>

#include <gtest/gtest.h>

#include "treerpo/util/rng.h"

TEST(SplitMix64, MatchesTheReferenceSequence) {
  // First outputs of the reference splitmix64.c for seed 1234567.
  treerpo::SplitMix64 rng(1234567);
  EXPECT_EQ(rng.next(), 6457827717110365317ULL);
  EXPECT_EQ(rng.next(), 3203168211198807973ULL);
  EXPECT_EQ(rng.next(), 9817491932198370423ULL);
}

TEST(Permutation, IsAPermutationAndDependsOnlyOnTheSeed) {
  auto a = treerpo::permutation(1000, 7);
  auto b = treerpo::permutation(1000, 7);
  auto c = treerpo::permutation(1000, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::sort(a.begin(), a.end());
  for (int64_t i = 0; i < 1000; ++i) EXPECT_EQ(a[static_cast<size_t>(i)], i);
}

TEST(SplitMix64, BelowStaysInRange) {
  treerpo::SplitMix64 rng(3);
  for (int i = 0; i < 10000; ++i) EXPECT_LT(rng.below(7), 7U);
}
