// Paged decode attention read in place: the CPU path against attention written out by hand with
// LibTorch matmuls over each sequence's gathered positions (float32, 1e-5; bfloat16 against the
// float32 result), GQA groups 1, 2 and 6, lengths of one token, mid-block and at block
// boundaries, shared blocks; and the model's decode over the kernel against the full forward,
// with forks at and inside blocks and blocks reused after release.
#include <cmath>
#include <utility>

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "paged_case.h"
#include "tiny_decoder.h"
#include "treerpo/model/paged_attention.h"
#include "treerpo/model/paged_kv_cache.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/util/error.h"

namespace treerpo::model {
namespace {

using testing::last_logits;
using testing::tiny_config;
using testing::tiny_model;

using Case = testing::PagedCase;

// `lengths` tokens per sequence over a pool of `blocks` blocks; every table is a random
// permutation of the pool, and sequence 1 shares sequence 0's first block.
Case random_case(const std::vector<int32_t>& lengths, int64_t heads, int64_t kv_heads,
                 int64_t head_dim, int64_t block_tokens, int64_t blocks, uint64_t seed) {
  torch::manual_seed(seed);
  Case c;
  const auto batch = static_cast<int64_t>(lengths.size());
  c.q = torch::randn({batch, heads, head_dim});
  c.keys = torch::randn({blocks, block_tokens, kv_heads, head_dim});
  c.values = torch::randn({blocks, block_tokens, kv_heads, head_dim});
  std::vector<torch::Tensor> rows;
  for (int64_t b = 0; b < batch; ++b) rows.push_back(torch::randperm(blocks).to(torch::kInt32));
  c.tables = torch::stack(rows);
  if (batch > 1) c.tables[1][0] = c.tables[0][0];
  c.lengths = torch::tensor(lengths, torch::kInt32);
  return c;
}

// softmax(q k^T / sqrt(d)) v for one sequence's positions, gathered one by one.
torch::Tensor by_hand(const Case& c) {
  const int64_t batch = c.q.size(0), heads = c.q.size(1), head_dim = c.q.size(2);
  const int64_t block_tokens = c.keys.size(1), kv_heads = c.keys.size(2);
  std::vector<torch::Tensor> out;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = c.lengths[b].item<int64_t>();
    std::vector<torch::Tensor> k, v;
    for (int64_t p = 0; p < len; ++p) {
      const int64_t block = c.tables[b][p / block_tokens].item<int64_t>();
      k.push_back(c.keys[block][p % block_tokens].to(torch::kFloat32));
      v.push_back(c.values[block][p % block_tokens].to(torch::kFloat32));
    }
    torch::Tensor keys = torch::stack(k), values = torch::stack(v); // [len, kv_heads, d]
    std::vector<torch::Tensor> per_head;
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t g = h / (heads / kv_heads);
      torch::Tensor scores = torch::mv(keys.select(1, g), c.q[b][h].to(torch::kFloat32)) /
                             std::sqrt(static_cast<double>(head_dim));
      per_head.push_back(torch::mv(values.select(1, g).t(), torch::softmax(scores, 0)));
    }
    out.push_back(torch::stack(per_head));
  }
  return torch::stack(out);
}

TEST(PagedAttention, CpuPathEqualsAttentionByHandForEveryGroupSize) {
  // Lengths: one token, inside a block, exactly two blocks, many blocks.
  const std::vector<int32_t> lengths = {1, 7, 8, 29};
  for (const auto& [heads, kv_heads] : {std::pair{4, 4}, {4, 2}, {12, 2}}) {
    for (int64_t head_dim : {8, 64}) {
      Case c = random_case(lengths, heads, kv_heads, head_dim, 4, 12, 3);
      torch::Tensor got = paged_decode_attention(c.q, c.keys, c.values, c.tables, c.lengths);
      EXPECT_TRUE(torch::allclose(got, by_hand(c), 1e-5, 1e-5))
          << heads << "/" << kv_heads << " d" << head_dim;
    }
  }
}

TEST(PagedAttention, BFloat16AccumulatesInFloat32) {
  Case c = random_case({5, 33, 64}, 12, 2, 128, 16, 8, 4);
  for (torch::Tensor* t : {&c.q, &c.keys, &c.values}) *t = t->to(torch::kBFloat16);
  torch::Tensor got = paged_decode_attention(c.q, c.keys, c.values, c.tables, c.lengths);
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  // The inputs are exactly representable; only the output's rounding to bfloat16 remains
  // (8 bits of mantissa: relative 2^-8).
  EXPECT_TRUE(torch::allclose(got.to(torch::kFloat32), by_hand(c), 8e-3, 8e-3));
}

TEST(PagedAttention, CpuPathSpreadsOverThreadsWithTheSameBits) {
  // Built without OpenMP, LibTorch's parallel_for (a header template) runs on one thread only.
  EXPECT_TRUE(paged_decode_attention_cpu_uses_threads());
  Case c = random_case({1, 7, 8, 29, 16, 3, 30, 12}, 12, 2, 64, 4, 16, 6);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const torch::Tensor one = paged_decode_attention(c.q, c.keys, c.values, c.tables, c.lengths);
  at::set_num_threads(4);
  const torch::Tensor four = paged_decode_attention(c.q, c.keys, c.values, c.tables, c.lengths);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, four));
}

TEST(PagedAttention, PositionsPastTheLengthAreNeverRead) {
  Case c = random_case({6, 3}, 4, 2, 8, 4, 6, 5);
  torch::Tensor before = paged_decode_attention(c.q, c.keys, c.values, c.tables, c.lengths);
  // NaN in every pool row no sequence reaches within its length changes nothing.
  testing::fill_unread_rows_with_nan(c);
  torch::Tensor after = paged_decode_attention(c.q, c.keys, c.values, c.tables, c.lengths);
  EXPECT_TRUE(torch::equal(before, after));
}

TEST(PagedAttention, InputsOutsideTheTableAreRefused) {
  Case c = random_case({4}, 4, 2, 8, 4, 3, 6);
  torch::Tensor zero = torch::tensor({0}, torch::kInt32),
                long_ = torch::tensor({13}, torch::kInt32);
  EXPECT_THROW(paged_decode_attention(c.q, c.keys, c.values, c.tables, zero), Error);
  EXPECT_THROW(paged_decode_attention(c.q, c.keys, c.values, c.tables, long_), Error);
  c.tables[0][0] = 7; // the pool has 3 blocks
  EXPECT_THROW(paged_decode_attention(c.q, c.keys, c.values, c.tables, c.lengths), Error);
  EXPECT_THROW(decode_attention_from_name("flash"), Error);
  EXPECT_EQ(decode_attention_from_name("paged_kernel"), DecodeAttention::PagedKernel);
}

// Three branches off one prefix (6 tokens in blocks of 4: forks inside a block), one of them
// forked again at a block boundary, decoded with the kernel together; one released and its
// blocks reused by a new sequence.
TEST(PagedAttention, KernelDecodeEqualsFullForwardWithForksAndReuse) {
  Qwen2 model = tiny_model();
  const auto kernel = DecodeAttention::PagedKernel;
  std::vector<int32_t> prefix = {10, 20, 30, 40, 50, 60};
  PagedKvCache cache(model.config(), 16, 4, torch::kFloat32, torch::kCPU);
  model.prefill(cache, {0}, {prefix});
  cache.fork(0, 1);
  cache.fork(0, 2);
  std::vector<std::vector<int32_t>> seqs = {prefix, prefix, prefix};
  const std::vector<std::vector<int32_t>> next = {
      {7, 8, 9, 1, 2, 3}, {100, 101, 102, 103, 104, 105}, {250, 251, 252, 253, 254, 255}};
  for (size_t t = 0; t < next[0].size(); ++t) {
    if (t == 2) { // sequence 2 holds 8 tokens: a fork at a block boundary
      cache.fork(2, 3);
      seqs.push_back(seqs[2]);
    }
    std::vector<int64_t> ids = {0, 1, 2};
    std::vector<int32_t> tokens = {next[0][t], next[1][t], next[2][t]};
    if (seqs.size() == 4) {
      ids.push_back(3);
      tokens.push_back(static_cast<int32_t>(200 + t));
    }
    torch::Tensor step = model.decode(cache, ids, tokens, kernel);
    for (size_t i = 0; i < ids.size(); ++i) {
      seqs[i].push_back(tokens[i]);
      EXPECT_TRUE(
          torch::allclose(step[static_cast<int64_t>(i)], last_logits(model, seqs[i]), 1e-5, 1e-5))
          << "step " << t << " seq " << i;
    }
  }
  cache.release(1);
  const std::vector<int32_t> other = {3, 1, 4, 1, 5, 9, 2, 6, 5};
  model.prefill(cache, {5}, {{other.begin(), other.end() - 1}});
  torch::Tensor reused = model.decode(cache, {5, 0}, {other.back(), 77}, kernel);
  seqs[0].push_back(77);
  EXPECT_TRUE(torch::allclose(reused[0], last_logits(model, other), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(reused[1], last_logits(model, seqs[0]), 1e-5, 1e-5));
}

TEST(PagedAttention, KernelAndTorchPathsGiveTheSameLogits) {
  Qwen2 model = tiny_model();
  PagedKvCache a(model.config(), 16, 4, torch::kFloat32, torch::kCPU);
  PagedKvCache b(model.config(), 16, 4, torch::kFloat32, torch::kCPU);
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {9, 8, 7, 6, 5, 4, 3, 2, 1}};
  model.prefill(a, {0, 1}, prompts);
  model.prefill(b, {0, 1}, prompts);
  for (int32_t t = 0; t < 6; ++t) {
    torch::Tensor x = model.decode(a, {0, 1}, {t + 40, t + 80}, DecodeAttention::PagedKernel);
    torch::Tensor y = model.decode(b, {0, 1}, {t + 40, t + 80}, DecodeAttention::Torch);
    EXPECT_TRUE(torch::allclose(x, y, 1e-5, 1e-5)) << t;
  }
}

} // namespace
} // namespace treerpo::model
