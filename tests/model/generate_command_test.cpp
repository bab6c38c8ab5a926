// `treerpo-train generate` end to end: the real binary on a tiny model folder without a tokenizer.
// (Its greedy output against transformers' generate is tests/oracles/test_model_parity.py.)
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model_cli.h"
#include "tiny_model.h"
#include "treerpo/model/qwen2.h"

namespace treerpo::model {
namespace {

using testing::TempDir;
using treerpo::testing::CliResult;

CliResult generate(const TempDir& work, const std::string& model_dir, const std::string& input,
                   const std::string& flags = "") {
  return treerpo::testing::run_model_command("generate", work, model_dir, input, flags);
}

// Greedy decoding by hand: re-run the whole sequence through the cache-free forward and append its
// argmax, `steps` times.
std::vector<int32_t> argmax_chain(Qwen2& model, std::vector<int32_t> ids, int steps) {
  torch::NoGradGuard no_grad;
  std::vector<int32_t> out;
  for (int i = 0; i < steps; ++i) {
    const auto next = model.forward(ids)[static_cast<int64_t>(ids.size()) - 1].argmax().item<int>();
    ids.push_back(next);
    out.push_back(next);
  }
  return out;
}

TEST(GenerateCommand, GreedyIsTheArgmaxChainOfTheFullForward) {
  TempDir model_dir, work;
  Qwen2 model = Qwen2::random(testing::tiny_config(false), 11, torch::kFloat32, torch::kCPU);
  model.save(model_dir.str());
  // No eos in this folder's config: every row runs to --max-new-tokens.
  CliResult run =
      generate(work, model_dir.str(), "{\"ids\": [3, 1, 4]}\n{\"ids\": [1, 5, 9, 2, 6]}\n",
               "--max-new-tokens 12 --batch 2");
  ASSERT_EQ(run.exit_code, 0) << (run.err.empty() ? "" : run.err[0]);
  ASSERT_EQ(run.out.size(), 2u);
  const auto first = nlohmann::json::parse(run.out[0]), second = nlohmann::json::parse(run.out[1]);
  EXPECT_EQ(first["ids"].get<std::vector<int32_t>>(), argmax_chain(model, {3, 1, 4}, 12));
  EXPECT_EQ(second["ids"].get<std::vector<int32_t>>(), argmax_chain(model, {1, 5, 9, 2, 6}, 12));
  EXPECT_FALSE(first["stopped"].get<bool>());
  EXPECT_FALSE(first.contains("text")) << "no tokenizer, no text";
}

TEST(GenerateCommand, PagedKernelDecodesWhatTheGatherDecodes) {
  TempDir model_dir, work;
  Qwen2::random(testing::tiny_config(false), 11, torch::kFloat32, torch::kCPU)
      .save(model_dir.str());
  // Prompts longer than a KV block, so that the decode reads several blocks per sequence.
  const std::string input = "{\"ids\": [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3]}\n"
                            "{\"ids\": [2, 7, 1, 8]}\n";
  CliResult gather = generate(work, model_dir.str(), input, "--max-new-tokens 20 --batch 2");
  CliResult paged = generate(work, model_dir.str(), input,
                             "--max-new-tokens 20 --batch 2 --decode-attention paged_kernel");
  ASSERT_EQ(gather.exit_code, 0) << (gather.err.empty() ? "" : gather.err[0]);
  ASSERT_EQ(paged.exit_code, 0) << (paged.err.empty() ? "" : paged.err[0]);
  ASSERT_EQ(paged.out.size(), 2u);
  EXPECT_EQ(paged.out, gather.out);
  // Steps padded to batch buckets (the path CUDA graphs replay), run eagerly on the CPU.
  CliResult fixed = generate(work, model_dir.str(), input,
                             "--max-new-tokens 20 --batch 2 --decode-attention paged_kernel "
                             "--decode-shapes fixed");
  ASSERT_EQ(fixed.exit_code, 0) << (fixed.err.empty() ? "" : fixed.err[0]);
  EXPECT_EQ(fixed.out, gather.out);
}

TEST(GenerateCommand, UnreadableGenerationConfigExitsTwoNamingTheFile) {
  TempDir model_dir, work;
  Qwen2::random(testing::tiny_config(true), 5, torch::kFloat32, torch::kCPU).save(model_dir.str());
  std::ofstream(model_dir / "generation_config.json") << "{not json";
  CliResult run = generate(work, model_dir.str(), "{\"ids\": [1]}\n");
  EXPECT_EQ(run.exit_code, 2);
  ASSERT_EQ(run.err.size(), 1u);
  EXPECT_NE(run.err[0].find("generation_config.json"), std::string::npos) << run.err[0];
}

TEST(GenerateCommand, BadInputExitsTwoWithOneLine) {
  TempDir model_dir, work;
  Qwen2::random(testing::tiny_config(true), 5, torch::kFloat32, torch::kCPU).save(model_dir.str());
  struct Case {
    std::string input, flags, says;
  };
  for (const Case& c :
       {Case{"{\"prompt\": \"hi\"}\n", "", "needs a tokenizer"},
        Case{"{\"ids\": [1, 999999]}\n", "", "outside the vocabulary"},
        Case{"{\"ids\": []}\n", "", "no tokens"}, Case{"[1, 2]\n", "", "expected"},
        Case{"{\"ids\": [1]}\n", "--temperature -1", "--temperature"},
        Case{"{\"ids\": [1]}\n", "--top-p 0", "--top-p"},
        Case{"{\"ids\": [1]}\n", "--decode-attention flash", "--decode-attention"},
        Case{"{\"ids\": [1]}\n", "--decode-shapes ragged", "--decode-shapes"},
        Case{"{\"ids\": [1]}\n", "--decode-shapes fixed", "--decode-attention"},
        Case{"{\"ids\": [1]}\n", "--decode-attention paged_kernel --decode-shapes cuda_graphs",
             "--device"}}) {
    SCOPED_TRACE(c.input + c.flags);
    CliResult run = generate(work, model_dir.str(), c.input, c.flags);
    EXPECT_EQ(run.exit_code, 2);
    ASSERT_EQ(run.err.size(), 1u);
    EXPECT_NE(run.err[0].find(c.says), std::string::npos) << run.err[0];
    EXPECT_TRUE(run.out.empty());
  }
}

} // namespace
} // namespace treerpo::model
