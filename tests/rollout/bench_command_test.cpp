// `treerpo-train bench rollout --repeats N`, the real binary: every engine grows the same trees in
// N rounds and reports its median round; a ratio is one of medians; N below 1 is bad input.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../common/temp_dir.h"

namespace {

struct BenchRun {
  int exit_code;
  std::string out, err;
};

BenchRun bench_rollout(const std::string& flags) {
  treerpo::testing::TempDir dir;
  const std::string out = dir / "out.json", err = dir / "err.txt";
  const std::string cmd =
      std::string(TREERPO_CLI) + " -q bench rollout " + flags + " > " + out + " 2> " + err;
  const int status = std::system(cmd.c_str());
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  return {WEXITSTATUS(status), read(out), read(err)};
}

// The middle of three values, by hand.
double middle_of_three(const nlohmann::json& rounds) {
  std::vector<double> v = rounds.get<std::vector<double>>();
  EXPECT_EQ(v.size(), 3u);
  std::sort(v.begin(), v.end());
  return v[1];
}

TEST(BenchRollout, RepeatsRunEveryEngineInRoundsAndReportEachMedian) {
  const BenchRun r = bench_rollout("--prompts 2 --max-answer-tokens 64 --repeats 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["repeats"].get<int64_t>(), 3);
  const double generated = j["tokens_generated"].get<double>();
  // The measured engine, the gather path beside it and the dense cache: each its own median.
  const double paged = middle_of_three(j["seconds_rounds"]);
  const double gather = middle_of_three(j["torch_gather"]["seconds_rounds"]);
  const double dense = middle_of_three(j["dense"]["seconds_rounds"]);
  EXPECT_DOUBLE_EQ(j["seconds"].get<double>(), paged);
  EXPECT_DOUBLE_EQ(j["torch_gather"]["seconds"].get<double>(), gather);
  EXPECT_DOUBLE_EQ(j["dense"]["seconds"].get<double>(), dense);
  EXPECT_DOUBLE_EQ(j["tokens_per_s"].get<double>(), generated / paged);
  // Every engine generated the same tokens, so a ratio of speeds is one of the medians' seconds.
  EXPECT_TRUE(j["torch_gather"]["same_tokens_generated"].get<bool>());
  EXPECT_TRUE(j["dense"]["same_tokens_generated"].get<bool>());
  EXPECT_NEAR(j["paged_kernel_over_torch_gather_tokens_per_s"].get<double>(), gather / paged,
              1e-9 * gather / paged);
  EXPECT_NEAR(j["paged_over_dense_tokens_per_s"].get<double>(), dense / paged,
              1e-9 * dense / paged);
}

TEST(BenchRollout, OneRoundByDefault) {
  const BenchRun r = bench_rollout("--prompts 1 --max-answer-tokens 64 --dense-slots -1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["repeats"].get<int64_t>(), 1);
  ASSERT_EQ(j["seconds_rounds"].size(), 1u);
  EXPECT_DOUBLE_EQ(j["seconds"].get<double>(), j["seconds_rounds"][0].get<double>());
  EXPECT_FALSE(j.contains("dense"));
}

TEST(BenchRollout, RepeatsBelowOneIsBadInput) {
  const BenchRun r = bench_rollout("--prompts 1 --repeats 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--repeats must be at least 1"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

} // namespace
