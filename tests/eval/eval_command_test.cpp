// `treerpo-train eval` through the binary: the summary JSON on stdout, and one-line errors with
// exit code 2 for bad input.
#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tiny_eval_model.h"

namespace {

using treerpo::eval::testing::TempDir;

struct Result {
  int exit_code = -1;
  std::string out, err;
};

Result run_cli(const std::string& args, const TempDir& dir) {
  const std::string err_path = dir / "stderr.txt";
  const std::string cmd = std::string(TREERPO_CLI) + " " + args + " 2>" + err_path;
  Result r;
  FILE* pipe = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe)) > 0;) r.out.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_path);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

TEST(EvalCommand, PrintsSummaryAndRefusesBadInput) {
  TempDir dir;
  treerpo::eval::testing::write_tiny_model(dir / "model");
  {
    std::ofstream data(dir / "gsm8k.jsonl");
    for (const auto& p : treerpo::eval::testing::gsm8k_fixture()) {
      data << nlohmann::json{{"question", p.question}, {"answer", p.answer}}.dump() << "\n";
    }
  }
  const std::string common =
      "eval --model " + (dir / "model") + " --data " + (dir / "gsm8k.jsonl") + " -q";
  const Result ok = run_cli(
      common + " --limit 2 --max-new-tokens 8 --maj 2 --greedy --out " + (dir / "out.jsonl"), dir);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  const auto summary = nlohmann::json::parse(ok.out);
  EXPECT_EQ(summary["problems"], 2);
  EXPECT_EQ(summary["maj"]["k"], 2);
  EXPECT_TRUE(summary.contains("greedy"));

  for (const std::string bad : {" --dtype float16", " --device tpu", " --batch 0"}) {
    const Result r = run_cli(common + bad, dir);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const Result missing =
      run_cli("eval --model " + (dir / "model") + " --data " + (dir / "absent.jsonl"), dir);
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
}

} // namespace
