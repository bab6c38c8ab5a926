// The CUDA paged decode attention kernel's own source, run by the CPU simulator
// (paged_attention_sim.cpp), against its CPU twin paged_decode_attention_cpu: every dtype, both
// head sizes, every GQA instantiation (groups 1, 2, 3 and 4 in blocks of 1/2/4 heads, 6 and 7 in
// blocks of 8, 12 split over two blocks), one partition and several (lengths across the 256-key
// partition edges, odd block sizes that straddle them), and max_length below and above the truth;
// and the bytes it reads from the pools (each live row once per block of query heads).
// The simulator checks that every shuffle is warp-uniform, every __syncthreads reached by all,
// every vector read aligned and inside q or the pools; the output and the split-K workspace start
// as NaN, so a value the kernel never wrote shows. What it cannot show is the GPU's own behaviour
// (timing, memory ordering, nvcc's code): scripts/gpu_check.sh's `attention` step holds the real
// kernel to the same CPU path.
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "../common/cuda_sim.h"

#define cuda simulated_cuda
#include "../../src/model/cuda/paged_attention_cuda.h"
#undef cuda

#include <torch/torch.h>

#include "paged_case.h"
#include "treerpo/model/paged_attention.h"

namespace treerpo::model {
namespace {

namespace sim = simulated_cuda;

using Case = testing::PagedCase;

// `lengths` tokens per sequence over a pool of just enough blocks plus two; every table is a
// random permutation of the pool, and sequence 1 shares sequence 0's first block.
Case random_case(const std::vector<int32_t>& lengths, int64_t heads, int64_t kv_heads,
                 int64_t head_dim, int64_t block_tokens, torch::ScalarType dtype, uint64_t seed) {
  torch::manual_seed(seed);
  int64_t blocks = 2;
  for (int32_t len : lengths)
    blocks = std::max(blocks, (len + block_tokens - 1) / block_tokens + 2);
  Case c;
  const auto batch = static_cast<int64_t>(lengths.size());
  c.q = torch::randn({batch, heads, head_dim}).to(dtype);
  c.keys = torch::randn({blocks, block_tokens, kv_heads, head_dim}).to(dtype);
  c.values = torch::randn({blocks, block_tokens, kv_heads, head_dim}).to(dtype);
  std::vector<torch::Tensor> rows;
  for (int64_t b = 0; b < batch; ++b) rows.push_back(torch::randperm(blocks).to(torch::kInt32));
  c.tables = torch::stack(rows).contiguous();
  if (batch > 1) c.tables[1][0] = c.tables[0][0];
  c.lengths = torch::tensor(lengths, torch::kInt32);
  return c;
}

sim::Dtype dtype_of(const torch::Tensor& t) {
  switch (t.scalar_type()) {
  case torch::kFloat32:
    return sim::Dtype::Float32;
  case torch::kBFloat16:
    return sim::Dtype::BFloat16;
  default:
    return sim::Dtype::Float16;
  }
}

struct Launch {
  cudaError_t error = cudaSuccess;
  std::string fault;
  torch::Tensor out;
  uint64_t key_bytes = 0, value_bytes = 0; // read from the pools
};

// The kernel's launch on `c` with the given max_length (-1: the true one) and, when `workspace` is
// false, no workspace.
Launch simulate(const Case& c, int64_t max_length = -1, bool workspace = true) {
  if (max_length < 0) max_length = c.lengths.max().item<int64_t>();
  sim::PagedDecodeArgs a;
  a.dtype = dtype_of(c.q);
  a.batch = c.q.size(0);
  a.heads = c.q.size(1);
  a.head_dim = c.q.size(2);
  a.kv_heads = c.keys.size(2);
  a.block_tokens = c.keys.size(1);
  a.table_width = c.tables.size(1);
  a.max_length = max_length;
  a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(a.head_dim)));
  Launch l;
  // NaN until written: an output or partial result the kernel forgets shows.
  l.out = torch::full_like(c.q, std::numeric_limits<float>::quiet_NaN());
  torch::Tensor space =
      torch::full({sim::paged_decode_workspace_floats(a.batch, a.heads, a.head_dim, max_length)},
                  std::numeric_limits<float>::quiet_NaN());
  a.q = c.q.data_ptr();
  a.key_pool = c.keys.data_ptr();
  a.value_pool = c.values.data_ptr();
  a.block_tables = c.tables.data_ptr<int32_t>();
  a.lengths = c.lengths.data_ptr<int32_t>();
  a.out = l.out.data_ptr();
  a.workspace = workspace && space.numel() > 0 ? space.data_ptr<float>() : nullptr;
  const cuda_sim::ReadableMemory readable({{c.q.data_ptr(), c.q.nbytes()},
                                           {c.keys.data_ptr(), c.keys.nbytes()},
                                           {c.values.data_ptr(), c.values.nbytes()}});
  l.error = sim::paged_decode_attention(a, /*stream=*/nullptr);
  l.fault = cuda_sim::last_fault();
  l.key_bytes = readable.bytes_read(1);
  l.value_bytes = readable.bytes_read(2);
  return l;
}

torch::Tensor cpu_path(const Case& c) {
  return paged_decode_attention_cpu(c.q, c.keys, c.values, c.tables, c.lengths);
}

// Float32 sums in another order; bfloat16 and float16 outputs one rounding apart at most.
void expect_close(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  ASSERT_FALSE(torch::isnan(got).any().item<bool>()) << what << ": an output never written";
  const double tol = got.scalar_type() == torch::kFloat32    ? 1e-5
                     : got.scalar_type() == torch::kBFloat16 ? 8e-3
                                                             : 1e-3;
  const torch::Tensor g = got.to(torch::kFloat32), w = want.to(torch::kFloat32);
  EXPECT_TRUE(torch::allclose(g, w, tol, tol))
      << what << ": max difference " << (g - w).abs().max().item<double>();
}

std::string name(const Case& c) {
  return std::string(c10::toString(c.q.scalar_type())) + " d" + std::to_string(c.q.size(2)) +
         " heads " + std::to_string(c.q.size(1)) + "/" + std::to_string(c.keys.size(2)) +
         " blocks of " + std::to_string(c.keys.size(1));
}

TEST(PagedAttentionSim, KernelEqualsTheCpuPathForEveryDtypeHeadSizeAndGroup) {
  // One token, inside the first partition, across the first partition edge (two partitions).
  const std::vector<int32_t> lengths = {1, 17, 300};
  const std::vector<std::pair<int64_t, int64_t>> groups = {{2, 2},  {4, 2},  {6, 2}, {8, 2},
                                                           {12, 2}, {14, 2}, {24, 2}};
  uint64_t seed = 1;
  for (torch::ScalarType dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
    for (int64_t head_dim : {64, 128}) {
      for (const auto& [heads, kv_heads] : groups) {
        const Case c = random_case(lengths, heads, kv_heads, head_dim, 16, dtype, ++seed);
        const Launch l = simulate(c);
        ASSERT_EQ(l.error, cudaSuccess) << name(c) << ": " << l.fault;
        expect_close(l.out, cpu_path(c), name(c));
      }
    }
  }
}

TEST(PagedAttentionSim, PartitionEdgesAndBlocksThatStraddleThem) {
  // Blocks of 5 and 16 tokens; lengths at and around 256 and 512 (one, two and three partitions).
  for (int64_t block_tokens : {5, 16}) {
    const Case c = random_case({255, 256, 257, 511, 513, 2}, 12, 2, 128, block_tokens,
                               torch::kFloat32, 40 + static_cast<uint64_t>(block_tokens));
    const Launch l = simulate(c);
    ASSERT_EQ(l.error, cudaSuccess) << name(c) << ": " << l.fault;
    expect_close(l.out, cpu_path(c), name(c));
  }
}

TEST(PagedAttentionSim, MaxLengthSetsOnlyTheSplit) {
  // One partition although keys run to 600 (each block then walks all of them), the truth (three)
  // and eight, five of them past every length (empty partitions merge to nothing).
  const Case c = random_case({600, 3, 270}, 12, 2, 64, 16, torch::kBFloat16, 50);
  const torch::Tensor want = cpu_path(c);
  for (int64_t max_length : {1, 600, 2000}) {
    const Launch l = simulate(c, max_length);
    ASSERT_EQ(l.error, cudaSuccess) << "max_length " << max_length << ": " << l.fault;
    expect_close(l.out, want, "max_length " + std::to_string(max_length));
  }
}

TEST(PagedAttentionSim, EachKeyAndValueRowIsReadOncePerBlockOfQueryHeads) {
  // The traffic the roofline counts (scripts/peers/decode_throughput.py: weights plus live KV per
  // step): every live key and value row read once for a GQA group of up to 8 query heads (6 in
  // the 1.5B, 7 in the 0.5B and the 7B), twice for 12 (two blocks of heads), however the keys are
  // split into partitions.
  const std::vector<int32_t> lengths = {1, 17, 300};
  const int64_t tokens = 1 + 17 + 300, kv_heads = 2, head_dim = 128;
  for (const auto& [heads, reads] : {std::pair{2, 1}, {12, 1}, {24, 2}}) {
    for (torch::ScalarType dtype : {torch::kFloat32, torch::kBFloat16}) {
      const Case c = random_case(lengths, heads, kv_heads, head_dim, 16, dtype, 80 + heads);
      const uint64_t want =
          static_cast<uint64_t>(tokens * kv_heads * head_dim * reads) * c10::elementSize(dtype);
      for (int64_t max_length : {-1, 2000}) {
        const Launch l = simulate(c, max_length);
        ASSERT_EQ(l.error, cudaSuccess) << name(c) << ": " << l.fault;
        EXPECT_EQ(l.key_bytes, want) << name(c) << " max_length " << max_length;
        EXPECT_EQ(l.value_bytes, want) << name(c) << " max_length " << max_length;
      }
    }
  }
}

TEST(PagedAttentionSim, PositionsPastTheLengthAreNeverRead) {
  Case c = random_case({6, 300}, 4, 2, 64, 16, torch::kFloat32, 60);
  const torch::Tensor before = cpu_path(c);
  testing::fill_unread_rows_with_nan(c);
  const Launch l = simulate(c);
  ASSERT_EQ(l.error, cudaSuccess) << l.fault;
  expect_close(l.out, before, "NaN past the lengths");
}

TEST(PagedAttentionSim, LaunchesItCannotRunAreRefusedWithoutRunning) {
  const Case c = random_case({300, 4}, 4, 2, 64, 16, torch::kFloat32, 70);
  // Split-K without a workspace.
  EXPECT_EQ(simulate(c, -1, /*workspace=*/false).error, cudaErrorInvalidValue);
  // A head size the kernel is not built for.
  const Case d96 = random_case({4}, 4, 2, 96, 16, torch::kFloat32, 71);
  EXPECT_EQ(simulate(d96).error, cudaErrorInvalidValue);
  // Query heads that are not a multiple of the kv heads.
  const Case odd = random_case({4}, 3, 2, 64, 16, torch::kFloat32, 72);
  EXPECT_EQ(simulate(odd).error, cudaErrorInvalidValue);
  // A query not on a 16-byte boundary (the kernel's vector loads need one).
  Case shifted = c;
  shifted.q = torch::randn({c.q.numel() + 1}).narrow(0, 1, c.q.numel()).view(c.q.sizes());
  const Launch l = simulate(shifted);
  EXPECT_EQ(l.error, cudaErrorMisalignedAddress);
  EXPECT_TRUE(torch::isnan(l.out).all().item<bool>()) << "nothing ran";
}

} // namespace
} // namespace treerpo::model
