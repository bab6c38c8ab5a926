// sampling_probs against transformers' own logits processors (tests/oracles/fixture_sampling.py
// writes their outputs to TREERPO_ORACLE_DIR/sampling.jsonl before this suite runs).
#include <fstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "treerpo/rollout/sampler.h"

namespace treerpo::rollout {
namespace {

using nlohmann::json;

at::Tensor matrix(const json& rows) {
  const auto height = static_cast<int64_t>(rows.size());
  const auto width = static_cast<int64_t>(rows.at(0).size());
  at::Tensor t = at::empty({height, width}, at::kFloat);
  auto a = t.accessor<float, 2>();
  for (int64_t r = 0; r < height; ++r) {
    for (int64_t c = 0; c < width; ++c) a[r][c] = rows[r][c].get<float>();
  }
  return t;
}

at::Tensor seen_mask(const json& seen, int64_t rows, int64_t vocab) {
  at::Tensor mask = at::zeros({rows, vocab}, at::kBool);
  auto a = mask.accessor<bool, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    for (const json& id : seen[r]) a[r][id.get<int64_t>()] = true;
  }
  return mask;
}

TEST(SamplerOracle, ProcessedDistributionEqualsTransformersLogitsProcessors) {
  const std::string path = std::string(TREERPO_ORACLE_DIR) + "/sampling.jsonl";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path << " is missing: CTest runs oracle_fixture_sampling first";
  int cases = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const json c = json::parse(line);
    SCOPED_TRACE(c["name"].get<std::string>());
    const at::Tensor logits = matrix(c["logits"]);
    SamplingSettings s;
    s.temperature = c["temperature"];
    s.top_k = c["top_k"];
    s.top_p = c["top_p"];
    s.repetition_penalty = c["repetition_penalty"];
    const at::Tensor probs =
        sampling_probs(logits, seen_mask(c["seen"], logits.size(0), logits.size(1)), s);
    const at::Tensor expected = matrix(c["probs"]);
    // Kept and dropped tokens agree exactly; the kept probabilities to float32 rounding.
    EXPECT_TRUE(at::equal(probs > 0, expected > 0));
    EXPECT_LE((probs - expected).abs().max().item<float>(), 1e-6f);
    ++cases;
  }
  EXPECT_GE(cases, 20);
}

} // namespace
} // namespace treerpo::rollout
