// The counting CPU allocator: a tensor's bytes are live from its allocation to its storage's
// release (on any thread), a view adds nothing, and the peak remembers the highest live total
// until reset. LibTorch may allocate small things of its own, so every check is a difference
// around a known allocation.
#include <thread>
#include <utility>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "treerpo/util/allocation_counter.h"

namespace {

using treerpo::AllocationCounter;

constexpr int64_t kN = 123457; // float32 elements: 493,828 bytes

TEST(AllocationCounter, InstallingTwiceIsTheSameCounter) {
  EXPECT_EQ(&AllocationCounter::install(), &AllocationCounter::install());
}

TEST(AllocationCounter, FloatTensorAddsExactlyFourBytesPerElementAndPeakStays) {
  AllocationCounter& counter = AllocationCounter::install();
  const int64_t before = counter.live_bytes();
  counter.reset_peak();
  torch::Tensor t = torch::empty({kN}, torch::kFloat32);
  EXPECT_EQ(counter.live_bytes() - before, 4 * kN);
  t = torch::Tensor();
  EXPECT_EQ(counter.live_bytes(), before);
  EXPECT_EQ(counter.peak_bytes() - before, 4 * kN);
}

TEST(AllocationCounter, ResetPeakRestartsFromLiveBytes) {
  AllocationCounter& counter = AllocationCounter::install();
  { torch::Tensor t = torch::zeros({kN}, torch::kFloat32); }
  EXPECT_GE(counter.peak_bytes() - counter.live_bytes(), 4 * kN);
  counter.reset_peak();
  EXPECT_EQ(counter.peak_bytes(), counter.live_bytes());
}

TEST(AllocationCounter, TensorFreedOnAnotherThreadIsSubtracted) {
  AllocationCounter& counter = AllocationCounter::install();
  const int64_t before = counter.live_bytes();
  torch::Tensor t = torch::empty({kN}, torch::kFloat32);
  ASSERT_EQ(counter.live_bytes() - before, 4 * kN);
  std::thread([owned = std::move(t)]() mutable { owned = torch::Tensor(); }).join();
  EXPECT_EQ(counter.live_bytes(), before);
}

TEST(AllocationCounter, ViewsShareTheirStorageAndCountOnce) {
  AllocationCounter& counter = AllocationCounter::install();
  const int64_t before = counter.live_bytes();
  torch::Tensor t = torch::empty({kN - 1, 2}, torch::kFloat32);
  torch::Tensor viewed = t.view({2, kN - 1});
  torch::Tensor slice = t.narrow(0, 10, 100);
  torch::Tensor transposed = t.t();
  EXPECT_EQ(counter.live_bytes() - before, 4 * 2 * (kN - 1));
  t = torch::Tensor();
  // The views keep the storage alive.
  EXPECT_EQ(counter.live_bytes() - before, 4 * 2 * (kN - 1));
  viewed = slice = transposed = torch::Tensor();
  EXPECT_EQ(counter.live_bytes(), before);
}

TEST(AllocationCounter, CopiesAndResultsAreCounted) {
  AllocationCounter& counter = AllocationCounter::install();
  torch::Tensor a = torch::ones({kN}, torch::kFloat32);
  const int64_t before = counter.live_bytes();
  torch::Tensor b = (a * 2).to(torch::kBFloat16);
  // The float32 product is freed; the bfloat16 copy stays.
  EXPECT_EQ(counter.live_bytes() - before, 2 * kN);
  EXPECT_EQ(b.scalar_type(), torch::kBFloat16);
}

} // namespace
