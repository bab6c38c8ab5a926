#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "tiny_model.h"
#include "treerpo/model/config.h"
#include "treerpo/model/layers.h"
#include "treerpo/util/error.h"

namespace treerpo::model {
namespace {

TEST(RmsNorm, DividesByRootMeanSquareThenScales) {
  // x = [3, 4]: mean square 12.5, rms sqrt(12.5); weight [1, 2].
  torch::Tensor x = torch::tensor({3.0f, 4.0f});
  torch::Tensor w = torch::tensor({1.0f, 2.0f});
  torch::Tensor y = rms_norm(x, w, 0.0);
  const double rms = std::sqrt(12.5);
  EXPECT_NEAR(y[0].item<double>(), 3.0 / rms, 1e-6);
  EXPECT_NEAR(y[1].item<double>(), 2.0 * 4.0 / rms, 1e-6);
}

TEST(RmsNorm, EpsilonIsAddedToTheMeanSquare) {
  torch::Tensor y = rms_norm(torch::tensor({1.0f, 1.0f}), torch::tensor({1.0f, 1.0f}), 3.0);
  EXPECT_NEAR(y[0].item<double>(), 0.5, 1e-6); // 1 / sqrt(1 + 3)
}

TEST(RmsNorm, ComputesInFloat32AndReturnsInputDtype) {
  torch::Tensor x = torch::tensor({300.0f, 400.0f}).to(torch::kBFloat16);
  torch::Tensor y = rms_norm(x, torch::ones({2}, torch::kBFloat16), 1e-6);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  // Squares of 300/400 overflow no float32 range; the result is the same as for [3, 4].
  EXPECT_NEAR(y[1].item<float>(), 4.0 / std::sqrt(12.5), 1e-2);
}

TEST(Rope, AnglesArePositionTimesInverseFrequency) {
  // head_dim 4, theta 100: inverse frequencies 1 and 100^(-2/4) = 0.1; position 2 -> angles 2, 0.2.
  auto [cos, sin] = rope_tables(torch::tensor({2}, torch::kInt64), 4, 100.0, torch::kFloat32);
  ASSERT_EQ(cos.sizes(), (std::vector<int64_t>{1, 4}));
  const double expected[] = {2.0, 0.2, 2.0, 0.2};
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(cos[0][i].item<double>(), std::cos(expected[i]), 1e-6);
    EXPECT_NEAR(sin[0][i].item<double>(), std::sin(expected[i]), 1e-6);
  }
}

TEST(Rope, RotatesFirstHalfAgainstSecondHalf) {
  // x = [a0, a1, b0, b1] rotates pairs (a_i, b_i) by angle_i: a' = a cos - b sin, b' = b cos + a
  // sin.
  torch::Tensor x = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f});
  auto [cos, sin] = rope_tables(torch::tensor({1}, torch::kInt64), 4, 100.0, torch::kFloat32);
  torch::Tensor y = apply_rope(x, cos[0], sin[0]);
  const double c0 = std::cos(1.0), s0 = std::sin(1.0), c1 = std::cos(0.1), s1 = std::sin(0.1);
  EXPECT_NEAR(y[0].item<double>(), 1 * c0 - 3 * s0, 1e-6);
  EXPECT_NEAR(y[1].item<double>(), 2 * c1 - 4 * s1, 1e-6);
  EXPECT_NEAR(y[2].item<double>(), 3 * c0 + 1 * s0, 1e-6);
  EXPECT_NEAR(y[3].item<double>(), 4 * c1 + 2 * s1, 1e-6);
}

TEST(Rope, PositionZeroIsIdentity) {
  torch::Tensor x = torch::randn({4, 8});
  auto [cos, sin] = rope_tables(torch::zeros({4}, torch::kInt64), 8, 10000.0, torch::kFloat32);
  EXPECT_TRUE(torch::equal(apply_rope(x, cos, sin), x));
}

// Writes `text` as config.json and expects from_json_file to reject it naming `key`.
void expect_rejected(const std::string& text, const std::string& key) {
  testing::TempDir dir;
  std::ofstream(dir / "config.json") << text;
  try {
    Qwen2Config::from_json_file(dir / "config.json");
    FAIL() << "accepted a config with bad " << key;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
}

const char* kValid = R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
  "vocab_size": 300, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "rope_theta": 1000000.0,
  "rms_norm_eps": 1e-06, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "use_sliding_window": false, "sliding_window": 4096, "rope_scaling": null, "bos_token_id": 1)";

std::string with(const std::string& extra) {
  return std::string(kValid) + extra + "}";
}

// The valid config with one field's text replaced.
std::string replaced(const std::string& from, const std::string& to) {
  std::string text = with("");
  return text.replace(text.find(from), from.size(), to);
}

TEST(Qwen2ConfigFile, ReadsHuggingFaceFields) {
  testing::TempDir dir;
  std::ofstream(dir / "config.json") << with("");
  Qwen2Config c = Qwen2Config::from_json_file(dir / "config.json");
  EXPECT_EQ(c.vocab_size, 300);
  EXPECT_EQ(c.head_dim(), 16);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

// transformers 5 moved rope_theta into rope_parameters (its save_pretrained writes no top-level
// key).
TEST(Qwen2ConfigFile, ReadsTransformers5RopeParameters) {
  testing::TempDir dir;
  std::ofstream(dir / "config.json")
      << replaced(R"("rope_theta": 1000000.0)",
                  R"("rope_parameters": {"rope_theta": 5e5, "rope_type": "default"})");
  EXPECT_DOUBLE_EQ(Qwen2Config::from_json_file(dir / "config.json").rope_theta, 5e5);
}

TEST(Qwen2ConfigFile, WrittenConfigReadsBackEqual) {
  testing::TempDir dir;
  Qwen2Config c = testing::tiny_config(false);
  c.write_json_file(dir / "config.json");
  Qwen2Config back = Qwen2Config::from_json_file(dir / "config.json");
  EXPECT_EQ(back.hidden_size, c.hidden_size);
  EXPECT_EQ(back.num_key_value_heads, c.num_key_value_heads);
  EXPECT_EQ(back.max_position_embeddings, c.max_position_embeddings);
  EXPECT_EQ(back.tie_word_embeddings, false);
  EXPECT_DOUBLE_EQ(back.rms_norm_eps, c.rms_norm_eps);
}

TEST(Qwen2ConfigFile, RejectsUnsupportedOptionsNamingTheKey) {
  expect_rejected(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 3})", "architectures");
  expect_rejected(replaced(R"("rope_scaling": null)", R"("rope_scaling": {"type": "yarn"})"),
                  "rope_scaling");
  expect_rejected(with(R"(, "rope_parameters": {"rope_theta": 1e6, "rope_type": "yarn"})"),
                  "rope_parameters.rope_type");
  expect_rejected(replaced(R"("use_sliding_window": false)", R"("use_sliding_window": true)"),
                  "use_sliding_window");
  expect_rejected(with(R"(, "hidden_act": "gelu")"), "hidden_act");
  expect_rejected(replaced(R"("hidden_size": 64)", R"("hidden_size": -1)"), "hidden_size");
  expect_rejected(replaced(R"("num_key_value_heads": 2)", R"("num_key_value_heads": 3)"),
                  "num_key_value_heads");
}

} // namespace
} // namespace treerpo::model
