// `treerpo-train tokenize` end to end: JSONL in, JSONL out, one line per line; bad input exits 2.
#include <sys/wait.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "tiny_tokenizer.h"

namespace treerpo::tokenizer {
namespace {

struct CliResult {
  int exit_code;
  std::string out, err;
};

std::string read_text_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

CliResult run_cli(const std::filesystem::path& dir, const std::string& args,
                  const std::string& stdin_text) {
  write_text_file(dir / "in.jsonl", stdin_text);
  const std::string cmd = std::string("\"") + TREERPO_CLI + "\" " + args + " < \"" +
                          (dir / "in.jsonl").string() + "\" > \"" + (dir / "out.jsonl").string() +
                          "\" 2> \"" + (dir / "err.txt").string() + "\"";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text_file(dir / "out.jsonl"),
          read_text_file(dir / "err.txt")};
}

class TokenizeCommand : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = scratch_dir();
    write_byte_level_tokenizer((dir_ / "tok").string(), {{"h", "i"}}, {"<|im_start|>"});
  }
  std::filesystem::path dir_;
};

TEST_F(TokenizeCommand, EncodesEachLineInOrder) {
  const CliResult r =
      run_cli(dir_, "tokenize --tokenizer " + (dir_ / "tok").string(),
              "{\"text\": \"hi\"}\n{\"text\": \"<|im_start|>a\"}\n{\"text\": \"\"}\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"ids\":[256]}\n{\"ids\":[257,97]}\n{\"ids\":[]}\n");
}

TEST_F(TokenizeCommand, DecodesIdsBackToText) {
  const CliResult r = run_cli(dir_, "tokenize --decode --tokenizer " + (dir_ / "tok").string(),
                              "{\"ids\": [256, 33]}\n{\"ids\": [195, 169]}\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"text\":\"hi!\"}\n{\"text\":\"\xC3\xA9\"}\n");
}

TEST_F(TokenizeCommand, MalformedLineExitsTwoNamingTheLine) {
  const CliResult r = run_cli(dir_, "tokenize --tokenizer " + (dir_ / "tok").string(),
                              "{\"text\": \"hi\"}\n{\"txt\": 1}\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("stdin:2:"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(TokenizeCommand, MissingTokenizerExitsTwo) {
  const CliResult r = run_cli(dir_, "tokenize --tokenizer " + (dir_ / "absent").string(), "");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("absent"), std::string::npos) << r.err;
}

TEST_F(TokenizeCommand, BenchPrintsOneJsonObject) {
  write_text_file(dir_ / "data.jsonl", "{\"question\": \"hi there\"}\n{\"question\": \"hi\"}\n");
  const CliResult r =
      run_cli(dir_,
              "bench tokenizer --threads 2 --passes 1 --tokenizer " + (dir_ / "tok").string() +
                  " --data " + (dir_ / "data.jsonl").string(),
              "");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["bytes"], 10);
  EXPECT_EQ(j["tokens"], 8); // "hi" -> 1, " there" -> 6 single bytes; then "hi" -> 1
  EXPECT_GT(j["mb_per_s_1_thread"].get<double>(), 0);
}

} // namespace
} // namespace treerpo::tokenizer
