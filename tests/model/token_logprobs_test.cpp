// The chunked LM-head log-prob against log_softmax + gather through plain autograd: values and
// gradients for x and W, with several chunks, a ragged last chunk, and under bf16 autocast.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "treerpo/model/token_logprobs.h"
#include "treerpo/util/autocast.h"

namespace treerpo::model {
namespace {

struct Case {
  torch::Tensor x, w, targets, upstream;
};

Case make_case(int64_t rows, int64_t hidden, int64_t vocab) {
  torch::manual_seed(3);
  return {torch::randn({rows, hidden}), torch::randn({vocab, hidden}) * 0.5,
          torch::randint(vocab, {rows}, torch::kLong), torch::randn({rows})};
}

// The plain computation: full [rows, vocab] log-softmax, gather, upstream-weighted sum.
std::vector<torch::Tensor> reference(const Case& c, torch::Tensor* values) {
  torch::Tensor x = c.x.clone().requires_grad_(true), w = c.w.clone().requires_grad_(true);
  torch::Tensor lp = torch::log_softmax(torch::matmul(x, w.t()).to(torch::kFloat32), 1)
                         .gather(1, c.targets.view({-1, 1}))
                         .view({-1});
  (lp * c.upstream).sum().backward();
  *values = lp.detach();
  return {x.grad(), w.grad()};
}

std::vector<torch::Tensor> chunked(const Case& c, int64_t chunk, torch::Tensor* values) {
  torch::Tensor x = c.x.clone().requires_grad_(true), w = c.w.clone().requires_grad_(true);
  torch::Tensor lp = token_logprobs(x, w, c.targets, chunk);
  (lp * c.upstream).sum().backward();
  *values = lp.detach();
  return {x.grad(), w.grad()};
}

TEST(TokenLogprobs, EqualLogSoftmaxGatherInValueAndGradient) {
  const Case c = make_case(10, 16, 37);
  torch::Tensor want, got;
  const auto ref = reference(c, &want);
  for (int64_t chunk : {1, 3, 4, 10, 64}) { // 3 and 4 leave a ragged last chunk
    const auto grads = chunked(c, chunk, &got);
    EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-6)) << "chunk " << chunk;
    EXPECT_TRUE(torch::allclose(grads[0], ref[0], 1e-4, 1e-6)) << "dx, chunk " << chunk;
    EXPECT_TRUE(torch::allclose(grads[1], ref[1], 1e-4, 1e-6)) << "dW, chunk " << chunk;
  }
  EXPECT_GT(ref[1].abs().max().item<double>(), 0.0);
}

TEST(TokenLogprobs, IsOneAutogradNodeOverXAndW) {
  const Case c = make_case(6, 8, 50);
  torch::Tensor x = c.x.clone().requires_grad_(true), w = c.w.clone().requires_grad_(true);
  torch::Tensor lp = token_logprobs(x, w, c.targets, 2);
  ASSERT_TRUE(lp.grad_fn());
  // Its inputs are the two leaves directly: no matmul / log_softmax nodes in between.
  int leaves = 0;
  for (const auto& edge : lp.grad_fn()->next_edges())
    leaves += edge.function && edge.function->name().find("AccumulateGrad") != std::string::npos;
  EXPECT_EQ(leaves, 2);
}

TEST(TokenLogprobs, RecomputesUnderTheForwardsAutocast) {
  const Case c = make_case(12, 32, 64);
  torch::Tensor fp32, mixed, plain;
  reference(c, &fp32);
  torch::Tensor x = c.x.clone().requires_grad_(true), w = c.w.clone().requires_grad_(true);
  torch::Tensor xr = c.x.clone().requires_grad_(true), wr = c.w.clone().requires_grad_(true);
  {
    AutocastScope scope(at::kCPU, {true, at::kBFloat16});
    mixed = token_logprobs(x, w, c.targets, 5);
    plain = torch::log_softmax(torch::matmul(xr, wr.t()).to(torch::kFloat32), 1)
                .gather(1, c.targets.view({-1, 1}))
                .view({-1});
  }
  // bf16 matmul: not the float32 values, but those of autocast's own matmul.
  EXPECT_FALSE(torch::allclose(mixed, fp32, 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(mixed, plain, 1e-4, 1e-4));
  (mixed * c.upstream).sum().backward();
  (plain * c.upstream).sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad(), xr.grad(), 2e-2, 2e-2));
  EXPECT_TRUE(torch::allclose(w.grad(), wr.grad(), 2e-2, 2e-2));
}

TEST(TokenLogprobs, NoRowsGiveAnEmptyResult) {
  const Case c = make_case(0, 8, 20);
  EXPECT_EQ(token_logprobs(c.x, c.w, c.targets).numel(), 0);
}

} // namespace
} // namespace treerpo::model
