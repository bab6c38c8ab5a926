// train.optimizer adamw-bf16: stochastic rounding is unbiased and exact where it can be; bf16
// weights and moments still follow sub-resolution updates; a small model trains within a stated
// tolerance of float32 AdamW; the state round-trips a file to a bitwise-equal resumed run.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include <ATen/Context.h>
#include <torch/torch.h>

#include "../common/tiny_qwen2.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/model/safetensors.h"
#include "treerpo/train/adamw.h"
#include "treerpo/train/optimizer_memory.h"
#include "treerpo/util/error.h"

namespace treerpo::train {
namespace {

namespace fs = std::filesystem;

at::Generator seeded(uint64_t seed) {
  at::Generator g = at::globalContext().defaultGenerator(torch::kCPU).clone();
  g.set_current_seed(seed);
  return g;
}

// bf16 spacing in [1, 2) is 2^-7. 1 + 2^-9 lies a quarter of the way from 1 to 1 + 2^-7, so it
// rounds up with probability 1/4; -x mirrors it. 200,000 draws: the share that rounds up is 1/4
// within 5 standard deviations (sqrt(0.25 * 0.75 / 2e5) = 0.00097).
TEST(StochasticRounding, RoundsToANeighbourWithTheRightOdds) {
  at::Generator g = seeded(3);
  const double x = 1.0 + std::ldexp(1.0, -9), up = 1.0 + std::ldexp(1.0, -7);
  for (double sign : {1.0, -1.0}) {
    const torch::Tensor r =
        stochastic_round_to_bf16(torch::full({200000}, sign * x), g).to(torch::kDouble) * sign;
    EXPECT_TRUE(((r == 1.0) | (r == up)).all().item<bool>());
    EXPECT_NEAR((r == up).to(torch::kDouble).mean().item<double>(), 0.25, 0.005) << sign;
  }
}

TEST(StochasticRounding, KeepsExactValuesAndZeros) {
  at::Generator g = seeded(4);
  const torch::Tensor exact =
      torch::tensor({0.0f, -0.0f, 1.0f, -2.5f, 0.0078125f, 3.0e38f, 1.0e-38f});
  const torch::Tensor r = stochastic_round_to_bf16(exact, g);
  EXPECT_EQ(r.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(r.to(torch::kFloat32), exact.to(torch::kBFloat16).to(torch::kFloat32)));
}

// The same constant-gradient walk as the Kahan test (adamw_test.cpp): each step moves a weight of
// 1.0 by lr = 5e-5 (m / sqrt(v) = 1), far below bf16's spacing; 400 steps must reach 0.98 on
// average. Rounding noise per step is at most spacing * sqrt(p(1-p)) ~ 6e-4 (p = 5e-5 / 2^-7), so
// one weight ends within ~0.0125 of 0.98 and the mean of 4,096 within ~2e-4: the test allows 1e-3.
TEST(AdamWBf16, Bf16WeightsFollowUpdatesBelowTheirResolutionOnAverage) {
  auto w = std::vector<torch::Tensor>{torch::ones({4096}, torch::kBFloat16).requires_grad_(true)};
  AdamW opt(w, {0.9, 0.999, 1e-8, 0.0, true, 7});
  for (int s = 0; s < 400; ++s) {
    w[0].mutable_grad() = torch::ones({4096}, torch::kBFloat16);
    opt.step(5e-5);
  }
  EXPECT_NEAR(w[0].to(torch::kFloat32).mean().item<double>(), 0.98, 1e-3);
}

// The state is two bf16 moments per element and nothing else: 4 bytes, as the plan counts.
TEST(AdamWBf16, StateIsTwoBf16MomentsPerElement) {
  const fs::path file =
      fs::temp_directory_path() / ("treerpo_adamw_bf16_" + std::to_string(getpid()));
  std::vector<torch::Tensor> w{torch::zeros({10, 3}, torch::kBFloat16).requires_grad_(true)};
  AdamW(w, {0.9, 0.999, 1e-8, 0.0, true, 1}).save(file.string());
  const auto state = model::SafetensorsFile::open(file.string());
  EXPECT_EQ(state.names(), (std::vector<std::string>{"exp_avg.0", "exp_avg_sq.0"}));
  EXPECT_EQ(state.dtype("exp_avg.0"), torch::kBFloat16);
  EXPECT_EQ(state.dtype("exp_avg_sq.0"), torch::kBFloat16);
  EXPECT_EQ(optimizer_state_bytes_per_element("adamw-bf16", true), 4);
  fs::remove(file);
}

// Next-token loss of a tiny random Qwen2 learning four random 64-token sequences (vocab 64), after
// each of `steps` AdamW steps at lr 5e-4.
std::vector<double> train_losses(torch::Dtype dtype, bool bf16_state, int steps) {
  model::Qwen2 m =
      model::Qwen2::random(treerpo::testing::tiny_qwen2(64, 32, 64), 9, dtype, torch::kCPU);
  torch::manual_seed(21);
  const torch::Tensor ids = torch::randint(0, 64, {4, 64}, torch::kInt64);
  model::PackedTree sequences;
  for (int64_t s = 0; s < 4; ++s) {
    for (int64_t i = 0; i < 64; ++i) {
      sequences.tokens.push_back(static_cast<int32_t>(ids[s][i].item<int64_t>()));
      sequences.parent.push_back(i == 0 ? -1 : static_cast<int32_t>(sequences.tokens.size()) - 2);
    }
  }
  std::vector<torch::Tensor> params = m.parameters();
  for (auto& p : params) p.requires_grad_(true);
  AdamW opt(params, {0.9, 0.999, 1e-8, 0.0, bf16_state, 5});
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    const torch::Tensor loss = -m.tree_logprobs(sequences).sum() / (4.0 * 63.0);
    loss.backward();
    opt.step(5e-4);
    opt.release_grads();
    losses.push_back(loss.item<double>());
  }
  return losses;
}

// Over 200 steps the loss with bf16 weights and bf16 moments stays within a stated tolerance of
// float32 AdamW on float32 weights at every 20th step: 0.05 nats and 8% (the loss falls by ~3.3
// nats; measured: at most 0.023 nats, 5.3% at the end; today's bf16 recipe, Kahan-compensated
// AdamW with float32 moments, is printed beside it and differs by up to 0.01 nats, 2.9%: most of
// the gap is the bf16 forward).
TEST(AdamWBf16, TrainsASmallModelWithinToleranceOfFloat32AdamW) {
  const auto reference = train_losses(torch::kFloat32, false, 200);
  const auto lean = train_losses(torch::kBFloat16, true, 200);
  const auto kahan = train_losses(torch::kBFloat16, false, 200);
  EXPECT_LT(reference.back(), 0.75 * reference.front());
  for (size_t s = 19; s < reference.size(); s += 20) {
    std::printf("step %zu: float32 %.4f, bf16+kahan %.4f, adamw-bf16 %.4f\n", s + 1, reference[s],
                kahan[s], lean[s]);
    EXPECT_NEAR(lean[s], reference[s], 0.05) << "step " << s + 1;
    EXPECT_NEAR(lean[s], reference[s], 0.08 * reference[s]) << "step " << s + 1;
  }
}

TEST(AdamWBf16, StateRoundTripsSoAResumedRunIsBitwiseTheSame) {
  const fs::path file =
      fs::temp_directory_path() / ("treerpo_adamw_bf16_" + std::to_string(getpid()));
  auto weights = [] {
    torch::manual_seed(5);
    return std::vector<torch::Tensor>{
        (torch::randn({40, 3}) * 0.02).to(torch::kBFloat16).requires_grad_(true)};
  };
  torch::manual_seed(11);
  std::vector<torch::Tensor> grads;
  for (int s = 0; s < 10; ++s) grads.push_back(torch::randn({40, 3}).to(torch::kBFloat16));
  const AdamWOptions options{0.9, 0.999, 1e-8, 0.01, true, 42};
  auto straight = weights(), resumed = weights();
  AdamW a(straight, options);
  for (int s = 0; s < 10; ++s) {
    straight[0].mutable_grad() = grads[s];
    a.step(1e-4);
  }
  {
    AdamW first(resumed, options);
    for (int s = 0; s < 5; ++s) {
      resumed[0].mutable_grad() = grads[s];
      first.step(1e-4);
    }
    first.save(file.string());
  }
  AdamW second(resumed, options);
  second.load(file.string());
  for (int s = 5; s < 10; ++s) {
    resumed[0].mutable_grad() = grads[s];
    second.step(1e-4);
  }
  EXPECT_TRUE(torch::equal(straight[0], resumed[0]));

  // adamw's state (float32 moments, a Kahan buffer) is not adamw-bf16's: one clear error.
  AdamW(weights(), {}).save(file.string());
  try {
    AdamW(weights(), options).load(file.string());
    FAIL() << "loaded another optimiser's state";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.optimizer"), std::string::npos) << e.what();
  }
  fs::remove(file);
}

TEST(AdamWBf16, ReleaseGradsFreesThem) {
  std::vector<torch::Tensor> w{torch::zeros({4}).requires_grad_(true)};
  AdamW opt(w, {});
  w[0].mutable_grad() = torch::ones({4});
  opt.step(1e-3);
  opt.release_grads();
  EXPECT_FALSE(w[0].grad().defined());
}

} // namespace
} // namespace treerpo::train
