// AdamW: the float32 update is torch.optim.AdamW's; bfloat16 weights with Kahan compensation follow
// the float32 trajectory where a plain bf16 update rounds away; the state round-trips a file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>

#include <torch/optim/adamw.h>
#include <torch/torch.h>

#include "treerpo/model/safetensors.h"
#include "treerpo/train/adamw.h"
#include "treerpo/train/optimizer_memory.h"
#include "treerpo/util/error.h"

namespace treerpo::train {
namespace {

namespace fs = std::filesystem;

// Seeded gradients for `steps` steps over two parameters of different shapes.
std::vector<std::vector<torch::Tensor>> gradients(int steps) {
  torch::manual_seed(11);
  std::vector<std::vector<torch::Tensor>> g;
  for (int s = 0; s < steps; ++s) g.push_back({torch::randn({4, 3}), torch::randn({5})});
  return g;
}

std::vector<torch::Tensor> start_weights(torch::Dtype dtype) {
  torch::manual_seed(5);
  return {(torch::randn({4, 3}) * 0.02).to(dtype).requires_grad_(true),
          (torch::randn({5}) * 0.02).to(dtype).requires_grad_(true)};
}

void set_grads(std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& g) {
  for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = g[i].to(params[i].dtype());
}

TEST(AdamW, Float32StepIsTorchsAdamW) {
  const auto grads = gradients(20);
  auto ours = start_weights(torch::kFloat32), theirs = start_weights(torch::kFloat32);
  AdamW opt(ours, {0.9, 0.95, 1e-8, 0.1});
  torch::optim::AdamW ref(theirs,
                          torch::optim::AdamWOptions(1e-3).betas({0.9, 0.95}).weight_decay(0.1));
  for (int s = 0; s < 20; ++s) {
    const double lr = 1e-3 * (s + 1) / 20.0; // a changing learning rate, as a schedule gives
    set_grads(ours, grads[s]);
    set_grads(theirs, grads[s]);
    opt.step(lr);
    for (auto& group : ref.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    ref.step();
  }
  for (size_t i = 0; i < ours.size(); ++i)
    EXPECT_TRUE(torch::allclose(ours[i], theirs[i], 1e-6, 1e-9)) << i;
  EXPECT_EQ(opt.steps(), 20);
}

// A constant gradient of 1 on a weight of 1.0: each AdamW step moves it by lr (m / sqrt(v) = 1),
// far below bf16's half-ulp at 1.0 (2^-8). 400 steps of 5e-5 must sum to -0.02.
TEST(AdamW, Bf16WeightsAccumulateUpdatesBelowTheirResolution) {
  auto bf16 = std::vector<torch::Tensor>{torch::ones({8}, torch::kBFloat16).requires_grad_(true)};
  auto fp32 = std::vector<torch::Tensor>{torch::ones({8}).requires_grad_(true)};
  AdamW compensated(bf16, {}), exact(fp32, {});
  for (int s = 0; s < 400; ++s) {
    set_grads(bf16, {torch::ones({8})});
    set_grads(fp32, {torch::ones({8})});
    compensated.step(5e-5);
    exact.step(5e-5);
  }
  EXPECT_EQ(exact.steps(), 400);
  EXPECT_NEAR(fp32[0][0].item<double>(), 0.98, 1e-5);
  // Within one bf16 step of the float32 weight at 0.98 (spacing 2^-7 below 1).
  EXPECT_NEAR(bf16[0][0].item<double>(), 0.98, 1.0 / 256);
  EXPECT_LT(bf16[0][0].item<double>(), 1.0);

  // What the compensation fixes: torch's AdamW on the same bf16 weight never moves it.
  auto plain = std::vector<torch::Tensor>{torch::ones({8}, torch::kBFloat16).requires_grad_(true)};
  torch::optim::AdamW ref(plain, torch::optim::AdamWOptions(5e-5).weight_decay(0.0));
  for (int s = 0; s < 400; ++s) {
    set_grads(plain, {torch::ones({8})});
    ref.step();
  }
  EXPECT_EQ(plain[0][0].item<double>(), 1.0);
}

// A parameter longer than one chunk of the update (kStepChunkElements) is updated exactly as
// torch's whole-tensor AdamW updates it.
TEST(AdamW, ParameterLargerThanAChunkIsTorchsAdamW) {
  const int64_t n = kStepChunkElements + kStepChunkElements / 2 + 3;
  torch::manual_seed(8);
  std::vector<torch::Tensor> ours{(torch::randn({n}) * 0.02).requires_grad_(true)};
  std::vector<torch::Tensor> theirs{ours[0].detach().clone().requires_grad_(true)};
  AdamW opt(ours, {0.9, 0.999, 1e-8, 0.1});
  torch::optim::AdamW ref(theirs, torch::optim::AdamWOptions(1e-3).weight_decay(0.1));
  for (int s = 0; s < 3; ++s) {
    const torch::Tensor g = torch::randn({n});
    ours[0].mutable_grad() = g.clone();
    theirs[0].mutable_grad() = g.clone();
    opt.step(1e-3);
    ref.step();
  }
  EXPECT_TRUE(torch::allclose(ours[0], theirs[0], 1e-6, 1e-9));
}

TEST(AdamW, Bf16TrajectoryTracksFloat32OnNoisyGradients) {
  // Noise around a mean of 1, so the weights drift (m / sqrt(v) near 1 / sqrt(2)).
  auto grads = gradients(300);
  for (auto& step : grads)
    for (auto& g : step) g += 1.0;
  auto bf16 = start_weights(torch::kBFloat16), fp32 = start_weights(torch::kFloat32);
  // Start both from the same (bf16-representable) weights.
  for (size_t i = 0; i < fp32.size(); ++i) fp32[i].detach().copy_(bf16[i].to(torch::kFloat32));
  AdamW a(bf16, {0.9, 0.999, 1e-8, 0.01}), b(fp32, {0.9, 0.999, 1e-8, 0.01});
  for (int s = 0; s < 300; ++s) {
    set_grads(bf16, grads[s]);
    set_grads(fp32, grads[s]);
    a.step(1e-5);
    b.step(1e-5);
  }
  // The weights moved by about 300 * 1e-5 / sqrt(2) = 2e-3 in float32; bf16 with compensation stays
  // within its own rounding of that (|w| < 0.1: spacing below 2^-11).
  for (size_t i = 0; i < fp32.size(); ++i) {
    const torch::Tensor start = start_weights(torch::kBFloat16)[i].to(torch::kFloat32);
    EXPECT_GT((fp32[i] - start).abs().max().item<double>(), 1e-3);
    EXPECT_LT((bf16[i].to(torch::kFloat32) - fp32[i]).abs().max().item<double>(), 1.0 / 2048) << i;
  }
}

TEST(AdamW, StateRoundTripsSoAResumedRunIsBitwiseTheSame) {
  const auto grads = gradients(10);
  const fs::path file = fs::temp_directory_path() / ("treerpo_adamw_" + std::to_string(getpid()));
  auto straight = start_weights(torch::kBFloat16), resumed = start_weights(torch::kBFloat16);
  AdamW a(straight, {});
  for (int s = 0; s < 10; ++s) {
    set_grads(straight, grads[s]);
    a.step(1e-4);
  }
  {
    AdamW first(resumed, {});
    for (int s = 0; s < 5; ++s) {
      set_grads(resumed, grads[s]);
      first.step(1e-4);
    }
    first.save(file.string());
  }
  AdamW second(resumed, {});
  second.load(file.string());
  EXPECT_EQ(second.steps(), 5);
  for (int s = 5; s < 10; ++s) {
    set_grads(resumed, grads[s]);
    second.step(1e-4);
  }
  for (size_t i = 0; i < straight.size(); ++i) EXPECT_TRUE(torch::equal(straight[i], resumed[i]));

  // Another model's state (float32 moments but no compensation for bf16 weights) is bad input.
  auto other = start_weights(torch::kFloat32);
  AdamW(other, {}).save(file.string());
  AdamW wrong(start_weights(torch::kBFloat16), {});
  EXPECT_THROW(wrong.load(file.string()), Error);
  fs::remove(file);
}

// Found by fuzzing the legacy reader: this damaged archive makes LibTorch's unpickler throw
// torch::jit::ErrorReport ("Unknown type name '__torch__.Module'"), which is not a c10::Error and
// escaped the loader as an exit-1 crash.
TEST(AdamW, LegacyArchiveLibTorchCannotUnpickleIsBadInput) {
  AdamW optimizer({torch::zeros({2, 3}), torch::zeros({4})}, {});
  try {
    optimizer.load_archive(std::string(TREERPO_SOURCE_DIR) +
                           "/tests/train/data/legacy-optimizer-unknown-type-name.pt");
    FAIL() << "loaded a damaged archive";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
}

// Found reading the loader for its fuzz target (tests/fuzz/optimizer.cpp): a negative or fractional
// step count was taken as is, and bias correction 1 - beta^steps then scaled updates wrongly.
TEST(AdamW, LegacyStepCountThatIsNotANonNegativeIntegerIsBadInput) {
  const fs::path file = fs::temp_directory_path() / ("treerpo_adamw_" + std::to_string(getpid()));
  auto weights = start_weights(torch::kFloat32);
  for (const torch::Tensor& steps :
       {torch::tensor(int64_t{-3}), torch::tensor(2.5), torch::tensor({int64_t{1}, int64_t{2}})}) {
    torch::serialize::OutputArchive archive;
    archive.write("steps", steps);
    for (size_t i = 0; i < weights.size(); ++i) {
      archive.write("exp_avg." + std::to_string(i), torch::zeros_like(weights[i]));
      archive.write("exp_avg_sq." + std::to_string(i), torch::zeros_like(weights[i]));
    }
    archive.save_to(file.string());
    AdamW optimizer(weights, {});
    EXPECT_THROW(optimizer.load_archive(file.string()), Error) << steps;
  }
  fs::remove(file);
}

// optimizer.pt as earlier versions wrote it (a LibTorch archive: "steps", then each parameter's
// moments) still resumes: the state read is the one written.
TEST(AdamW, LegacyArchiveLoadsTheStateItHolds) {
  const fs::path file = fs::temp_directory_path() / ("treerpo_adamw_" + std::to_string(getpid()));
  auto weights = start_weights(torch::kFloat32);
  torch::manual_seed(3);
  std::vector<torch::Tensor> m, v;
  torch::serialize::OutputArchive archive;
  archive.write("steps", torch::tensor(int64_t{7}));
  for (size_t i = 0; i < weights.size(); ++i) {
    m.push_back(torch::randn_like(weights[i]));
    v.push_back(torch::rand_like(weights[i]));
    archive.write("exp_avg." + std::to_string(i), m.back());
    archive.write("exp_avg_sq." + std::to_string(i), v.back());
  }
  archive.save_to(file.string());
  AdamW optimizer(weights, {});
  optimizer.load_archive(file.string());
  EXPECT_EQ(optimizer.steps(), 7);
  // What it holds is what the archive held: saved in the current format, it reads back the same.
  optimizer.save(file.string());
  const auto state = model::SafetensorsFile::open(file.string());
  EXPECT_EQ(state.metadata().at("steps"), "7");
  for (size_t i = 0; i < weights.size(); ++i) {
    EXPECT_TRUE(torch::equal(state.tensor("exp_avg." + std::to_string(i)), m[i]));
    EXPECT_TRUE(torch::equal(state.tensor("exp_avg_sq." + std::to_string(i)), v[i]));
  }
  fs::remove(file);
}

// optimizer.state is a safetensors file: each moment a tensor named by its parameter's index, the
// step count and train.optimizer in the metadata.
TEST(AdamW, StateFileIsSafetensorsWithTheStepCountInItsMetadata) {
  const fs::path file = fs::temp_directory_path() / ("treerpo_adamw_" + std::to_string(getpid()));
  auto weights = start_weights(torch::kBFloat16);
  AdamW optimizer(weights, {});
  for (const auto& g : gradients(3)) {
    set_grads(weights, g);
    optimizer.step(1e-3);
  }
  optimizer.save(file.string());
  const auto state = model::SafetensorsFile::open(file.string());
  EXPECT_EQ(state.metadata().at("steps"), "3");
  EXPECT_EQ(state.metadata().at("optimizer"), "adamw");
  EXPECT_EQ(state.metadata().at("format"), "pt");
  EXPECT_EQ(state.names(),
            (std::vector<std::string>{"compensation.0", "compensation.1", "exp_avg.0", "exp_avg.1",
                                      "exp_avg_sq.0", "exp_avg_sq.1"}));
  EXPECT_EQ(state.dtype("exp_avg.1"), torch::kFloat32);
  EXPECT_EQ(state.dtype("compensation.1"), torch::kBFloat16);
  EXPECT_EQ(state.shape("exp_avg.0"), (std::vector<int64_t>{4, 3}));
  fs::remove(file);
}

// Each way a state file can fail to be this optimiser's state is one bad_input line.
TEST(AdamW, StateFileThatIsNotThisOptimisersIsBadInput) {
  const fs::path file = fs::temp_directory_path() / ("treerpo_adamw_" + std::to_string(getpid()));
  auto weights = start_weights(torch::kFloat32);
  auto zeros = [&](size_t i) { return torch::zeros_like(weights[i]); };
  using Tensors = std::vector<std::pair<std::string, torch::Tensor>>;
  const Tensors good = {{"exp_avg.0", zeros(0)},
                        {"exp_avg_sq.0", zeros(0)},
                        {"exp_avg.1", zeros(1)},
                        {"exp_avg_sq.1", zeros(1)}};
  struct Case {
    const char* what;
    Tensors tensors;
    std::map<std::string, std::string> metadata;
    const char* says;
  };
  Tensors extra = good;
  extra.emplace_back("exp_avg.2", torch::zeros({1}));
  Tensors missing(good.begin(), good.end() - 1);
  Tensors reshaped = good;
  reshaped[2].second = torch::zeros({6});
  Tensors bf16 = good;
  bf16[0].second = zeros(0).to(torch::kBFloat16);
  const std::vector<Case> cases = {
      {"no optimizer", good, {{"steps", "1"}}, "no optimizer in its metadata"},
      {"another optimizer",
       good,
       {{"optimizer", "adamw-bf16"}, {"steps", "1"}},
       "written by train.optimizer adamw-bf16, this run's is adamw"},
      {"an unknown optimizer",
       good,
       {{"optimizer", "sgd\nline two"}, {"steps", "1"}},
       "optimizer \"sgd\\nline two\" in its metadata is not one treerpo writes"},
      {"no steps", good, {{"optimizer", "adamw"}}, "steps in its metadata"},
      {"negative steps", good, {{"optimizer", "adamw"}, {"steps", "-1"}}, "steps in its metadata"},
      {"fractional steps",
       good,
       {{"optimizer", "adamw"}, {"steps", "2.5"}},
       "steps in its metadata"},
      {"steps beyond int64",
       good,
       {{"optimizer", "adamw"}, {"steps", "99999999999999999999"}},
       "steps in its metadata"},
      {"a parameter more",
       extra,
       {{"optimizer", "adamw"}, {"steps", "1"}},
       "5 tensors where this model's state has 4"},
      {"a moment missing",
       missing,
       {{"optimizer", "adamw"}, {"steps", "1"}},
       "no tensor exp_avg_sq.1"},
      {"another shape",
       reshaped,
       {{"optimizer", "adamw"}, {"steps", "1"}},
       "exp_avg.1 does not match the model's parameter 1"},
      {"another dtype",
       bf16,
       {{"optimizer", "adamw"}, {"steps", "1"}},
       "exp_avg.0 does not match the model's parameter 0 (BFloat16 vs this run's Float)"},
  };
  for (const Case& c : cases) {
    model::write_safetensors(file.string(), c.tensors, c.metadata);
    AdamW optimizer(weights, {});
    try {
      optimizer.load(file.string());
      ADD_FAILURE() << c.what << ": loaded";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput) << c.what;
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos)
          << c.what << ": " << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
      EXPECT_EQ(optimizer.steps(), 0) << c.what;
    }
  }
  fs::remove(file);
}

} // namespace
} // namespace treerpo::train
