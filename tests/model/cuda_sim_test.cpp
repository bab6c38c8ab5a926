// The CUDA simulator itself (cuda_sim.h): shuffles, shared memory and block indices give what a
// GPU gives, and each fault it exists to catch is caught, named, and stops the launch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "../common/cuda_sim_builtins.h"

namespace {

using treerpo::cuda_sim::last_fault;
using treerpo::cuda_sim::launch;
using treerpo::cuda_sim::ReadableMemory;

// out[global thread] = the sum of its warp's lane ids, by a butterfly of xor shuffles.
__global__ void warp_sums(int* out) {
  int v = static_cast<int>(threadIdx.x % 32);
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

// out[b][i] = in[b][blockDim - 1 - i], through shared memory.
__global__ void reverse_blocks(const float* in, float* out) {
  TREERPO_SHARED(float, tile, [256]);
  const unsigned i = threadIdx.x, base = blockIdx.x * blockDim.x;
  tile[i] = __ldg(in + base + i);
  __syncthreads();
  out[base + i] = tile[blockDim.x - 1 - i];
}

// Block 0's thread 0 writes the shared value; every thread of every block reads it. On a GPU the
// later blocks read whatever the memory held (perhaps block 0's value, as a simulator that kept
// shared arrays between blocks would give): a bug the poisoning makes show.
__global__ void first_block_writes(float* out, int* flags) {
  TREERPO_SHARED(float, value, [1]);
  TREERPO_SHARED(int, flag, [2]);
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    value[0] = 1.0f;
    flag[0] = 7;
  }
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = value[0];
  flags[blockIdx.x * blockDim.x + threadIdx.x] = flag[0] + 10 * flag[1];
}

__global__ void half_warp_shuffle(int* out) {
  int v = 1;
  if (threadIdx.x % 32 < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

__global__ void shuffles_at_two_lines(int* out) {
  int v = 1;
  if (threadIdx.x % 2 == 0) {
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  } else {
    v = __shfl_xor_sync(0xffffffffu, v, 1) + 1;
  }
  out[threadIdx.x] = v;
}

__global__ void sync_in_a_branch(int* out) {
  if (threadIdx.x < 64) __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void read_float4(const float* p, float* out) {
  const float4 f = __ldg(reinterpret_cast<const float4*>(p));
  out[threadIdx.x] = f.x + f.y + f.z + f.w;
}

TEST(CudaSim, XorShufflesExchangeWithinEachWarp) {
  std::vector<int> out(2 * 96, -1);
  ASSERT_EQ(launch(warp_sums, dim3(2), dim3(96), out.data()), cudaSuccess) << last_fault();
  for (int v : out) EXPECT_EQ(v, 31 * 32 / 2);
}

TEST(CudaSim, SharedMemoryIsTheBlocksAndBarriersOrderIt) {
  std::vector<float> in(3 * 256), out(in.size(), -1.0f);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  ASSERT_EQ(launch(reverse_blocks, dim3(3), dim3(256), in.data(), out.data()), cudaSuccess)
      << last_fault();
  for (size_t b = 0; b < 3; ++b) {
    for (size_t i = 0; i < 256; ++i) EXPECT_EQ(out[b * 256 + i], in[b * 256 + 255 - i]);
  }
}

TEST(CudaSim, SharedArraysArePoisonedAtEachBlocksStart) {
  std::vector<float> out(3 * 64, 0.0f);
  std::vector<int> flags(out.size(), 0);
  ASSERT_EQ(launch(first_block_writes, dim3(3), dim3(64), out.data(), flags.data()), cudaSuccess)
      << last_fault();
  for (size_t i = 0; i < out.size(); ++i) {
    if (i < 64) {
      // The block's own write stands: the threads reaching the declaration after thread 0 (all of
      // them, before the barrier) do not poison it again. flag[1], never written: -1.
      EXPECT_EQ(out[i], 1.0f) << i;
      EXPECT_EQ(flags[i], 7 - 10) << i;
    } else {
      EXPECT_TRUE(std::isnan(out[i])) << i << ": " << out[i];
      EXPECT_EQ(flags[i], -1 - 10) << i;
    }
  }
}

TEST(CudaSim, AShuffleNotEveryLaneReachesIsAFault) {
  std::vector<int> out(64);
  EXPECT_EQ(launch(half_warp_shuffle, dim3(1), dim3(64), out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(last_fault().find("lanes 16,17,"), std::string::npos) << last_fault();
  EXPECT_EQ(launch(shuffles_at_two_lines, dim3(1), dim3(32), out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(last_fault().find("different shuffles"), std::string::npos) << last_fault();
  // A block that is not whole warps cannot run a full-mask shuffle.
  EXPECT_EQ(launch(warp_sums, dim3(1), dim3(48), out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(last_fault().find("not whole warps"), std::string::npos) << last_fault();
}

TEST(CudaSim, SyncThreadsNotEveryThreadReachesIsAFault) {
  std::vector<int> out(128);
  EXPECT_EQ(launch(sync_in_a_branch, dim3(1), dim3(128), out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(last_fault().find("__syncthreads"), std::string::npos) << last_fault();
}

TEST(CudaSim, VectorReadsMustBeAlignedAndInsideTheBuffers) {
  alignas(16) float data[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<float> out(32);
  ASSERT_EQ(launch(read_float4, dim3(1), dim3(32), data + 4, out.data()), cudaSuccess);
  EXPECT_EQ(out[0], 5 + 6 + 7 + 8);
  EXPECT_EQ(launch(read_float4, dim3(1), dim3(32), data + 1, out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(last_fault().find("aligned"), std::string::npos) << last_fault();
  {
    ReadableMemory readable({{data, sizeof(float) * 8}});
    EXPECT_EQ(launch(read_float4, dim3(1), dim3(32), data + 4, out.data()), cudaSuccess);
    EXPECT_EQ(launch(read_float4, dim3(1), dim3(32), data + 8, out.data()), cudaErrorLaunchFailure);
    EXPECT_NE(last_fault().find("outside"), std::string::npos) << last_fault();
    alignas(16) float more[4] = {1, 1, 1, 1};
    {
      ReadableMemory also({{more, sizeof more}});
      EXPECT_EQ(launch(read_float4, dim3(1), dim3(32), more, out.data()), cudaSuccess);
      EXPECT_EQ(also.bytes_read(0), 32 * sizeof(float4)); // 32 threads, one float4 each
    }
    // The inner one's end leaves the outer one's buffers, and only those, readable.
    EXPECT_EQ(launch(read_float4, dim3(1), dim3(32), more, out.data()), cudaErrorLaunchFailure);
    EXPECT_EQ(launch(read_float4, dim3(1), dim3(32), data, out.data()), cudaSuccess);
    EXPECT_EQ(readable.bytes_read(0),
              2 * 32 * sizeof(float4)); // its two good launches, 32 float4 each
  }
  EXPECT_EQ(launch(read_float4, dim3(1), dim3(32), data + 8, out.data()), cudaSuccess);
}

TEST(CudaSim, LaunchConfigurationsAGpuRefusesAreRefused) {
  std::vector<int> out(4096);
  EXPECT_EQ(launch(warp_sums, dim3(1), dim3(2048), out.data()), cudaErrorInvalidConfiguration);
  EXPECT_EQ(launch(warp_sums, dim3(0), dim3(32), out.data()), cudaErrorInvalidConfiguration);
  EXPECT_EQ(launch(warp_sums, dim3(1, 65536), dim3(32), out.data()), cudaErrorInvalidConfiguration);
}

} // namespace
