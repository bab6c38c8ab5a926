// `treerpo-train score` end to end: the real binary on a tiny model folder.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model_cli.h"
#include "tiny_model.h"
#include "treerpo/model/qwen2.h"

namespace treerpo::model {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using treerpo::testing::CliResult;

CliResult score(const TempDir& work, const std::string& model_dir, const std::string& input,
                const std::string& flags = "") {
  return treerpo::testing::run_model_command("score", work, model_dir, input, flags);
}

std::vector<double> logprobs_of(const std::string& line) {
  return nlohmann::json::parse(line)["logprobs"].get<std::vector<double>>();
}

TEST(ScoreCommand, IdsLinesGiveLogprobOfEachTokenAfterThePrompt) {
  TempDir model_dir, work;
  Qwen2 model = Qwen2::random(testing::tiny_config(true), 5, torch::kFloat32, torch::kCPU);
  model.save(model_dir.str());
  CliResult run = score(
      work, model_dir.str(),
      "{\"ids\": [1, 2, 3, 4, 5], \"prompt_len\": 2}\n\n{\"ids\": [9, 8], \"prompt_len\": 1}\n");
  ASSERT_EQ(run.exit_code, 0) << (run.err.empty() ? "" : run.err[0]);
  ASSERT_EQ(run.out.size(), 2u);
  torch::NoGradGuard no_grad;
  torch::Tensor lp = torch::log_softmax(model.forward({1, 2, 3, 4, 5}), -1);
  std::vector<double> first = logprobs_of(run.out[0]);
  ASSERT_EQ(first.size(), 3u);
  for (int t = 2; t < 5; ++t) EXPECT_NEAR(first[t - 2], lp[t - 1][t + 1].item<double>(), 1e-6);
  std::vector<double> second = logprobs_of(run.out[1]);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NEAR(second[0], torch::log_softmax(model.forward({9, 8}), -1)[0][8].item<double>(), 1e-6);
}

TEST(ScoreCommand, BadCheckpointExitsTwoWithOneLine) {
  TempDir model_dir, work;
  Qwen2::random(testing::tiny_config(true), 5, torch::kFloat32, torch::kCPU).save(model_dir.str());
  const std::string weights = model_dir / "model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) / 2);
  CliResult run = score(work, model_dir.str(), "{\"ids\": [1, 2], \"prompt_len\": 1}\n");
  EXPECT_EQ(run.exit_code, 2);
  ASSERT_EQ(run.err.size(), 1u);
  EXPECT_NE(run.err[0].find(weights), std::string::npos) << run.err[0];
  EXPECT_NE(run.err[0].find("tensor "), std::string::npos) << run.err[0];
}

TEST(ScoreCommand, UnknownDeviceOrDtypeExitsTwoNamingTheOption) {
  TempDir model_dir, work;
  Qwen2::random(testing::tiny_config(true), 5, torch::kFloat32, torch::kCPU).save(model_dir.str());
  for (const std::string flag : {"--device tpu", "--dtype float16"}) {
    CliResult run = score(work, model_dir.str(), "{\"ids\": [1, 2], \"prompt_len\": 1}\n", flag);
    EXPECT_EQ(run.exit_code, 2) << flag;
    ASSERT_EQ(run.err.size(), 1u) << flag;
    EXPECT_NE(run.err[0].find(flag.substr(0, flag.find(' '))), std::string::npos) << run.err[0];
  }
}

TEST(ScoreCommand, BadLineExitsTwoNamingTheLine) {
  TempDir model_dir, work;
  Qwen2::random(testing::tiny_config(true), 5, torch::kFloat32, torch::kCPU).save(model_dir.str());
  CliResult run =
      score(work, model_dir.str(),
            "{\"ids\": [1, 2], \"prompt_len\": 1}\n{\"ids\": [1, 300], \"prompt_len\": 1}\n");
  EXPECT_EQ(run.exit_code, 2);
  ASSERT_EQ(run.err.size(), 1u);
  EXPECT_NE(run.err[0].find("input.jsonl:2"), std::string::npos) << run.err[0];
}

TEST(ScoreCommand, TextLinesScoreTheCompletionTokens) {
  const fs::path tokenizer = fs::path(TREERPO_SHARED_DIR) / "tokenizers" / "qwen";
  if (!fs::exists(tokenizer / "tokenizer.json"))
    GTEST_SKIP() << "no Qwen tokenizer under " << tokenizer;
  TempDir model_dir, work;
  Qwen2Config cfg = testing::tiny_config(true);
  cfg.vocab_size = 151936; // Qwen2.5's embedding rows
  Qwen2::random(cfg, 5, torch::kFloat32, torch::kCPU).save(model_dir.str());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(tokenizer / f, model_dir / f);
  }
  // Special tokens have fixed ids in Qwen2's vocabulary: <|im_start|> 151644, <|im_end|> 151645,
  // <|endoftext|> 151643.
  CliResult text = score(work, model_dir.str(),
                         R"({"prompt": "<|im_start|>", "completion": "<|im_end|><|endoftext|>"})"
                         "\n");
  ASSERT_EQ(text.exit_code, 0) << (text.err.empty() ? "" : text.err[0]);
  CliResult ids =
      score(work, model_dir.str(), "{\"ids\": [151644, 151645, 151643], \"prompt_len\": 1}\n");
  ASSERT_EQ(ids.exit_code, 0);
  ASSERT_EQ(text.out.size(), 1u);
  EXPECT_EQ(text.out, ids.out);
}

} // namespace
} // namespace treerpo::model
