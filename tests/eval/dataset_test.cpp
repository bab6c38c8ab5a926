// Reading problem files: real GSM8K, field names, and every bad-input case.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "treerpo/eval/dataset.h"
#include "treerpo/util/error.h"

namespace fs = std::filesystem;
using treerpo::eval::load_problems;

namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  fs::path dir = fs::temp_directory_path() / "treerpo_dataset_test";
  fs::create_directories(dir);
  std::ofstream(dir / name) << text;
  return (dir / name).string();
}

std::string error_of(const std::string& path, const std::string& q = "question",
                     const std::string& a = "answer") {
  try {
    load_problems(path, q, a);
  } catch (const treerpo::Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    return e.what();
  }
  return "";
}

} // namespace

TEST(Dataset, ReadsRealGsm8k) {
  std::string path = std::string(TREERPO_SHARED_DIR) + "/data/gsm8k/test.jsonl";
  if (!fs::exists(path)) GTEST_SKIP() << "shared data absent: " << path;
  auto problems = load_problems(path, "question", "answer");
  ASSERT_EQ(problems.size(), 1319U);
  EXPECT_EQ(problems[0].line, 1);
  EXPECT_NE(problems[0].question.find("Janet"), std::string::npos);
  EXPECT_NE(problems[0].answer.find("#### 18"), std::string::npos);
}

TEST(Dataset, ConfigurableFieldsBlankLinesAndNumericAnswers) {
  std::string path = write_temp(
      "fields.jsonl",
      "{\"problem\": \"1+1?\", \"final\": 2}\n\n{\"problem\": \"x\", \"final\": \"3\"}\n");
  auto problems = load_problems(path, "problem", "final");
  ASSERT_EQ(problems.size(), 2U);
  EXPECT_EQ(problems[0].answer, "2");
  EXPECT_EQ(problems[1].line, 3);
}

TEST(Dataset, BadInputNamesFileAndLine) {
  EXPECT_NE(error_of("/nonexistent/x.jsonl").find("cannot read"), std::string::npos);
  EXPECT_NE(error_of(write_temp("empty.jsonl", "\n")).find("no problems"), std::string::npos);
  std::string bad = write_temp("bad.jsonl", "{\"question\": \"a\", \"answer\": \"1\"}\nnot json\n");
  EXPECT_NE(error_of(bad).find(bad + ":2: not a JSON object"), std::string::npos);
  std::string missing = write_temp("missing.jsonl", "{\"question\": \"a\"}\n");
  EXPECT_NE(error_of(missing).find(missing + ":1: no field 'answer'"), std::string::npos);
  std::string list = write_temp("list.jsonl", "{\"question\": [1], \"answer\": \"1\"}\n");
  EXPECT_NE(error_of(list).find("field 'question' is not a string"), std::string::npos);
}
