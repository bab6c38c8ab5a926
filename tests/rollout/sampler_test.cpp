// Sampler semantics against hand-computed Hugging Face logits-processor outputs on tiny logits.
#include <cmath>
#include <limits>
#include <set>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "treerpo/rollout/sampler.h"

namespace treerpo::rollout {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

at::Tensor row(std::vector<float> v) {
  return at::tensor(v, at::kFloat).unsqueeze(0);
}

TEST(Sampler, RepetitionPenaltyMultipliesNegativeAndDividesPositiveSeenLogits) {
  auto logits = row({2.0f, -1.0f, 0.5f});
  auto seen = at::tensor(std::vector<int64_t>{1, 1, 0}).to(at::kBool).unsqueeze(0);
  auto out = apply_repetition_penalty(logits, seen, 2.0);
  EXPECT_FLOAT_EQ(out[0][0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(out[0][1].item<float>(), -2.0f);
  EXPECT_FLOAT_EQ(out[0][2].item<float>(), 0.5f);
}

TEST(Sampler, TopKKeepsTiesWithTheKthScore) {
  auto out = apply_top_k(row({1.0f, 3.0f, 2.0f, 3.0f}), 2);
  EXPECT_EQ(out[0][0].item<float>(), -kInf);
  EXPECT_FLOAT_EQ(out[0][1].item<float>(), 3.0f);
  EXPECT_EQ(out[0][2].item<float>(), -kInf);
  EXPECT_FLOAT_EQ(out[0][3].item<float>(), 3.0f);
}

TEST(Sampler, TopPDropsTheTailWhoseMassIsAtMostOneMinusP) {
  // probs 0.5 0.3 0.15 0.05, p = 0.75: ascending cumsum 0.05 0.2 0.5 1.0; <= 0.25 removed.
  auto logits = row({std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)});
  auto out = apply_top_p(logits, 0.75);
  EXPECT_NEAR(out[0][0].item<float>(), std::log(0.5f), 1e-6);
  EXPECT_NEAR(out[0][1].item<float>(), std::log(0.3f), 1e-6);
  EXPECT_EQ(out[0][2].item<float>(), -kInf);
  EXPECT_EQ(out[0][3].item<float>(), -kInf);
}

TEST(Sampler, TopPAlwaysKeepsTheMostLikelyToken) {
  auto logits = row({std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)});
  auto out = apply_top_p(logits, 0.01);
  EXPECT_NEAR(out[0][0].item<float>(), std::log(0.5f), 1e-6);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(out[0][i].item<float>(), -kInf);
}

TEST(Sampler, ChainAppliesPenaltyThenTemperatureThenTopKThenTopP) {
  // logits 2, 1, 0, -1; id 0 seen, penalty 2 -> 1, 1, 0, -1; T = 0.5 -> 2, 2, 0, -2;
  // top-k 3 -> 2, 2, 0, -inf; softmax: e^2/(2e^2+1) = 0.4404 twice, 1/(2e^2+1) = 0.0634;
  // top-p 0.9: ascending cumsum 0.0634 <= 0.1 removed -> 0.5, 0.5.
  SamplingSettings s{0.5, 0.9, 3, 2.0, 20};
  auto seen = at::tensor(std::vector<int64_t>{1, 0, 0, 0}).to(at::kBool).unsqueeze(0);
  auto probs = sampling_probs(row({2.0f, 1.0f, 0.0f, -1.0f}), seen, s);
  EXPECT_NEAR(probs[0][0].item<float>(), 0.5f, 1e-6);
  EXPECT_NEAR(probs[0][1].item<float>(), 0.5f, 1e-6);
  EXPECT_EQ(probs[0][2].item<float>(), 0.0f);
  EXPECT_EQ(probs[0][3].item<float>(), 0.0f);
}

TEST(Sampler, GreedyAtTemperatureZeroTakesTheArgmaxAfterThePenalty) {
  SamplingSettings s{0.0, 1.0, 0, 4.0, 20};
  auto seen = at::tensor(std::vector<int64_t>{1, 0}).to(at::kBool).unsqueeze(0);
  auto probs = sampling_probs(row({2.0f, 1.0f}), seen, s); // 2 / 4 = 0.5 < 1
  EXPECT_EQ(probs[0][0].item<float>(), 0.0f);
  EXPECT_EQ(probs[0][1].item<float>(), 1.0f);
}

TEST(Sampler, EntropyIsOverTheTopKRenormalised) {
  // probs 0.4 0.4 0.1 0.1: the top two renormalise to 0.5, 0.5 -> ln 2.
  auto logits = row({std::log(0.4f), std::log(0.1f), std::log(0.4f), std::log(0.1f)});
  EXPECT_NEAR(top_k_entropy(logits, 2)[0].item<float>(), std::log(2.0f), 1e-6);
  // all four: -(2 * 0.4 ln 0.4 + 2 * 0.1 ln 0.1) = 1.1935
  EXPECT_NEAR(top_k_entropy(logits, 4)[0].item<float>(), 1.19355, 1e-4);
}

TEST(Sampler, InverseCdfDrawNeverPicksAZeroWeight) {
  auto w = at::tensor(std::vector<float>{0.25f, 0.0f, 0.75f}).unsqueeze(0).repeat({3, 1});
  auto u = at::tensor(std::vector<float>{0.2f, 0.25f, 0.3f});
  auto idx = draw_from_weights(w, u);
  EXPECT_EQ(idx[0].item<int64_t>(), 0);
  EXPECT_EQ(idx[1].item<int64_t>(), 0);
  EXPECT_EQ(idx[2].item<int64_t>(), 2);
}

TEST(Sampler, DistinctSecondTokenDiffersAndComesFromTheEntropyTopK) {
  SamplingSettings s{1.0, 1.0, 0, 1.0, 3};
  Sampler sampler(s);
  // Top-3 of the model's log-probs: ids 4, 2, 0.
  auto logits = row({1.0f, -5.0f, 2.0f, -6.0f, 3.0f}).repeat({64, 1});
  Rng rng(7);
  std::vector<double> u1, u2;
  for (int i = 0; i < 64; ++i) u1.push_back(rng.uniform()), u2.push_back(rng.uniform());
  Draws d = sampler.draw(logits, at::Tensor(), u1, u2);
  std::set<int32_t> alts;
  for (int i = 0; i < 64; ++i) {
    EXPECT_NE(d.alt_token[i], d.token[i]);
    EXPECT_TRUE(d.alt_token[i] == 0 || d.alt_token[i] == 2 || d.alt_token[i] == 4);
    alts.insert(d.alt_token[i]);
  }
  EXPECT_EQ(alts.size(), 3u);
}

// Evenly spaced uniforms: the count of each outcome of an inverse-CDF draw is n * p within 1.
std::vector<double> even_uniforms(int n) {
  std::vector<double> u;
  for (int i = 0; i < n; ++i) u.push_back((i + 0.5) / n);
  return u;
}

TEST(Sampler, SecondTokenIsProportionalToExpLogprobOverTemperature) {
  // top_k 1 keeps only id 4 for the sampled token; the second token comes from the model's raw
  // top-3 (ids 4, 2, 0) without 4: p(2) / p(0) = exp((2 - 1) / T) = e^2 at T = 0.5, so
  // p(2) = e^2 / (1 + e^2) = 0.880797.
  Sampler sampler(SamplingSettings{0.5, 1.0, 1, 1.0, 3});
  const int n = 4000;
  auto logits = row({1.0f, -5.0f, 2.0f, -6.0f, 3.0f}).repeat({n, 1});
  Draws d = sampler.draw(logits, at::Tensor(), even_uniforms(n), even_uniforms(n));
  int twos = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(d.token[i], 4);
    ASSERT_TRUE(d.alt_token[i] == 2 || d.alt_token[i] == 0);
    twos += d.alt_token[i] == 2;
  }
  EXPECT_NEAR(twos, n * 0.880797, 1.0);
}

TEST(Sampler, SecondTokenIgnoresThePenaltyUnderRawEntropy) {
  // A penalty of 100 on id 2 pushes it out of the sampler's top-2, yet the second token's
  // candidates are the model's raw top-2: ids 4 and 2.
  Sampler sampler(SamplingSettings{1.0, 1.0, 2, 100.0, 2});
  auto seen = at::tensor(std::vector<int64_t>{0, 0, 1, 0, 0}).to(at::kBool).unsqueeze(0);
  Draws d = sampler.draw(row({1.0f, -5.0f, 2.0f, -6.0f, 3.0f}), seen, {0.99}, {0.5});
  EXPECT_NE(d.token[0], 2);
  EXPECT_EQ(d.token[0], 4); // ids 4 and 0 survive the penalised top-2; u = 0.99 draws 4
  EXPECT_EQ(d.alt_token[0], 2);
}

TEST(Sampler, ProcessedEntropyIsOverTheSamplingDistribution) {
  // probs 0.4 0.4 0.1 0.1; top-p 0.8 removes both 0.1s, so the processed top-4 is 0.5, 0.5 (and
  // two removed tokens): entropy ln 2, against 1.1935 over the raw top-4.
  auto logits = row({std::log(0.4f), std::log(0.1f), std::log(0.4f), std::log(0.1f)});
  SamplingSettings raw{1.0, 0.8, 0, 1.0, 4};
  SamplingSettings processed = raw;
  processed.processed_entropy = true;
  Draws a = Sampler(raw).draw(logits, at::Tensor(), {0.3}, {0.5});
  Draws b = Sampler(processed).draw(logits, at::Tensor(), {0.3}, {0.5});
  EXPECT_NEAR(a.entropy[0], 1.19355, 1e-4);
  EXPECT_NEAR(b.entropy[0], std::log(2.0f), 1e-6);
  // The removed candidates weigh exp(-99 / T): the second token is the other kept one.
  EXPECT_EQ(a.token[0], 0);
  EXPECT_EQ(b.alt_token[0], 2);
}

TEST(Sampler, GreedyDistinctSecondTokenIsTheRunnerUp) {
  Sampler sampler(SamplingSettings{0.0, 1.0, 3, 1.0, 20});
  Draws d = sampler.draw(row({1.0f, -5.0f, 2.0f, -6.0f, 3.0f}), at::Tensor(), {0.5}, {0.5});
  EXPECT_EQ(d.token[0], 4);
  EXPECT_EQ(d.alt_token[0], 2);
  EXPECT_NEAR(d.token_logprob[0],
              3.0 - std::log(std::exp(1.0) + std::exp(-5.0) + std::exp(2.0) + std::exp(-6.0) +
                             std::exp(3.0)),
              1e-5);
}

TEST(Sampler, RngIsDeterministicAndInTheOpenUnitInterval) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    double x = a.uniform();
    EXPECT_EQ(x, b.uniform());
    EXPECT_GT(x, 0.0);
    EXPECT_LT(x, 1.0);
    differs |= x != c.uniform();
  }
  EXPECT_TRUE(differs);
}

} // namespace
} // namespace treerpo::rollout
