// Sampler semantics against hand-computed Hugging Face logits-processor outputs on tiny logits.
#include <cmath>
#include <limits>
#include <set>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "treerpo/rollout/sampler.h"
#include "treerpo/util/host_transfer.h"

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

// Logits spread like a language model's (a few likely ids, a long tail) and a random seen mask.
struct RandomBatch {
  at::Tensor logits, seen;
};
RandomBatch random_batch(uint64_t seed, int64_t rows, int64_t vocab) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto logits = at::randn({rows, vocab}, gen) * 3.0;
  auto seen = at::rand({rows, vocab}, gen) < 0.05;
  return {logits, seen};
}

// What distribution() returned before its candidates travelled with the draws: the non-zero
// entries, in id order, of the reference chain's row and of the model's log-probs.
TokenDistribution reference_distribution(const at::Tensor& logits, const at::Tensor& seen,
                                         const SamplingSettings& s, int64_t r) {
  auto probs = sampling_probs(logits, seen, s)[r].contiguous();
  auto logprobs = logits.log_softmax(-1)[r].contiguous();
  TokenDistribution out;
  for (int64_t id = 0; id < probs.size(0); ++id) {
    const float p = probs[id].item<float>();
    if (p == 0.0f) continue;
    out.ids.push_back(static_cast<int32_t>(id));
    out.probs.push_back(p);
    out.logprobs.push_back(logprobs[id].item<float>());
  }
  return out;
}

void expect_same(const TokenDistribution& a, const TokenDistribution& b) {
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.probs, b.probs);
  EXPECT_EQ(a.logprobs, b.logprobs);
}

TEST(Sampler, TopKFirstProbsEqualTheReferenceChain) {
  auto batch = random_batch(1, 16, 1000);
  for (double temperature : {0.6, 1.0, 1.7}) {
    for (int64_t k : {1, 5, 25, 200}) {
      for (double p : {0.3, 0.85, 1.0}) {
        for (double penalty : {1.0, 1.3}) {
          SCOPED_TRACE(testing::Message() << "T " << temperature << " k " << k << " p " << p
                                          << " penalty " << penalty);
          SamplingSettings s{temperature, p, k, penalty, 20};
          auto expected = sampling_probs(batch.logits, batch.seen, s);
          auto fast = top_k_first_probs(batch.logits, batch.seen, s);
          EXPECT_TRUE(at::equal(fast.probs > 0, expected > 0));
          EXPECT_LE((fast.probs - expected).abs().max().item<float>(), 1e-6);
          EXPECT_FALSE(fast.ties_past_candidates.any().item<bool>());
          // The candidates hold every non-zero probability.
          EXPECT_TRUE(
              at::equal((fast.probs.gather(-1, fast.ids) > 0).sum(-1), (expected > 0).sum(-1)));
        }
      }
    }
  }
}

TEST(Sampler, TopKFirstKeepsTiesWithTheKthScore) {
  // Top-3 of 4, 3, 1, 1, 1, 0, 1, -2 keeps 4, 3 and the four 1s (ids 2, 3, 4, 6): e^4 = 54.598,
  // e^3 = 20.086, e^1 = 2.718 each, sum 85.557.
  auto logits = row({4.0f, 3.0f, 1.0f, 1.0f, 1.0f, 0.0f, 1.0f, -2.0f});
  // p = 0.99 removes nothing (the lowest, 0.0318, is above 0.01).
  auto all = top_k_first_probs(logits, at::Tensor(), SamplingSettings{1.0, 0.99, 3, 1.0, 20});
  const std::vector<float> expected_all = {0.638151f, 0.234763f, 0.031772f, 0.031772f,
                                           0.031772f, 0.0f,      0.031772f, 0.0f};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(all.probs[0][i].item<float>(), expected_all[i], 1e-6);
  // p = 0.8: the ties' ascending cumulative mass 0.127 is <= 0.2, the next (0.362) is not: 4 and 3
  // remain, as 1 / (1 + e^-1) = 0.731059 and 0.268941.
  auto cut = top_k_first_probs(logits, at::Tensor(), SamplingSettings{1.0, 0.8, 3, 1.0, 20});
  const std::vector<float> expected_cut = {0.731059f, 0.268941f, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(cut.probs[0][i].item<float>(), expected_cut[i], 1e-6);
  for (double p : {0.99, 0.8}) {
    SamplingSettings s{1.0, p, 3, 1.0, 20};
    auto fast = top_k_first_probs(logits, at::Tensor(), s);
    EXPECT_LE((fast.probs - sampling_probs(logits, at::Tensor(), s)).abs().max().item<float>(),
              1e-6);
    EXPECT_FALSE(fast.ties_past_candidates.item<bool>());
  }
}

TEST(Sampler, TopKFirstCutsEqualProbabilitiesInIdOrder) {
  // p = 0.95 cuts inside the four ties (0.0318 <= 0.05 < 0.0635): the lowest id of them, 2, goes.
  // The rest renormalise over e^4 + e^3 + 3 e: 0.659091, 0.242466 and 0.032814 each.
  auto logits = row({4.0f, 3.0f, 1.0f, 1.0f, 1.0f, 0.0f, 1.0f, -2.0f});
  auto fast = top_k_first_probs(logits, at::Tensor(), SamplingSettings{1.0, 0.95, 3, 1.0, 20});
  const std::vector<float> expected = {0.659091f, 0.242466f, 0.0f,      0.032814f,
                                       0.032814f, 0.0f,      0.032814f, 0.0f};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(fast.probs[0][i].item<float>(), expected[i], 1e-6);
}

// id 0 scores 2, ids 1..40 tie at 1 (more ties than the candidates past top-2 hold), the rest 0.
at::Tensor many_ties() {
  std::vector<float> v(64, 0.0f);
  v[0] = 2.0f;
  for (int i = 1; i <= 40; ++i) v[i] = 1.0f;
  return row(v);
}

TEST(Sampler, TopKFirstFlagsTiesPastItsCandidates) {
  for (double p : {0.99, 1.0}) {
    EXPECT_TRUE(top_k_first_probs(many_ties(), at::Tensor(), SamplingSettings{1.0, p, 2, 1.0, 20})
                    .ties_past_candidates.item<bool>());
  }
  // Without top-p the mask is apply_top_k's over the whole vocabulary: all 41 remain.
  auto no_p = top_k_first_probs(many_ties(), at::Tensor(), SamplingSettings{1.0, 1.0, 2, 1.0, 20});
  EXPECT_EQ((no_p.probs > 0).sum().item<int64_t>(), 41);
}

TEST(Sampler, TopPWithTiesPastTheCandidatesTakesTheReferencePath) {
  // p = 0.99 keeps all 41: e^2 / (e^2 + 40 e) = 0.063633 and e / (e^2 + 40 e) = 0.023409 each.
  SamplingSettings s{1.0, 0.99, 2, 1.0, 20};
  Sampler sampler(s);
  const int64_t before = host_transfers();
  sampler.draw(many_ties(), at::Tensor(), {0.5}, {0.5});
  EXPECT_EQ(host_transfers() - before, 2); // the fast step's, then the reference step's
  const int64_t drawn = host_transfers();
  TokenDistribution d = sampler.distribution(0);
  EXPECT_EQ(host_transfers() - drawn, 1); // the candidates do not hold the row
  ASSERT_EQ(d.ids.size(), 41u);
  for (int i = 0; i <= 40; ++i) {
    EXPECT_EQ(d.ids[i], i);
    EXPECT_NEAR(d.probs[i], i == 0 ? 0.063633f : 0.023409f, 1e-6);
  }
  expect_same(d, reference_distribution(many_ties(), at::Tensor(), s, 0));
}

TEST(Sampler, TiesPastTheCandidatesWithoutTopPCostOnlyTheRowsTransfer) {
  SamplingSettings s{1.0, 1.0, 2, 1.0, 20};
  Sampler sampler(s);
  const int64_t before = host_transfers();
  sampler.draw(many_ties(), at::Tensor(), {0.5}, {0.5});
  EXPECT_EQ(host_transfers() - before, 1);
  TokenDistribution d = sampler.distribution(0);
  EXPECT_EQ(host_transfers() - before, 2);
  EXPECT_EQ(d.ids.size(), 41u);
  expect_same(d, reference_distribution(many_ties(), at::Tensor(), s, 0));
}

TEST(Sampler, DistributionTravelsWithTheDrawsWhenTopKIsOnOrGreedy) {
  auto batch = random_batch(2, 8, 300);
  for (const SamplingSettings& s :
       {SamplingSettings{0.7, 0.9, 5, 1.2, 20}, SamplingSettings{1.0, 1.0, 25, 1.0, 20},
        SamplingSettings{0.0, 1.0, 0, 1.2, 20}}) {
    SCOPED_TRACE(testing::Message() << "T " << s.temperature << " k " << s.top_k);
    Sampler sampler(s);
    std::vector<double> u(8, 0.5);
    const int64_t before = host_transfers();
    sampler.draw(batch.logits, batch.seen, u, u);
    EXPECT_EQ(host_transfers() - before, 1);
    for (int64_t r = 0; r < 8; ++r) {
      const int64_t drawn = host_transfers();
      TokenDistribution d = sampler.distribution(r);
      EXPECT_EQ(host_transfers(), drawn) << "row " << r;
      expect_same(d, reference_distribution(batch.logits, batch.seen, s, r));
    }
  }
}

TEST(Sampler, DistributionTransfersTheRowWhenTopKIsOff) {
  auto batch = random_batch(3, 4, 300);
  SamplingSettings s{0.7, 0.9, 0, 1.2, 20};
  Sampler sampler(s);
  std::vector<double> u(4, 0.5);
  sampler.draw(batch.logits, batch.seen, u, u);
  for (int64_t r = 0; r < 4; ++r) {
    const int64_t drawn = host_transfers();
    TokenDistribution d = sampler.distribution(r);
    EXPECT_EQ(host_transfers() - drawn, 1);
    expect_same(d, reference_distribution(batch.logits, batch.seen, s, r));
  }
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
