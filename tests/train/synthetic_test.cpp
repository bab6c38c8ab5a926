// The demo's synthetic task: pinned output for a seed, correct arithmetic, disjoint splits.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <unistd.h>

#include "treerpo/train/synthetic.h"
#include "treerpo/util/error.h"

namespace treerpo::train {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

std::vector<nlohmann::json> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  return records;
}

SyntheticOptions options_for(int64_t count, uint64_t seed) {
  SyntheticOptions options;
  options.count = count;
  options.seed = seed;
  return options;
}

TEST(Synthetic, FirstProblemOfSeed42IsPinned) {
  // splitmix64(42) draws, in the documented order (person, object, steps, start; per step
  // add-or-subtract, operand, phrase), worked out outside the code under test:
  //   ...6e95 % 16 = 5 -> Liz/She; ...f103 % 10 = 1 -> pen; ...9f52 % 2 + 2 = 2 steps;
  //   ...e394 % 9 + 1 = 1 -> "has 1 pen" (singular);
  //   step 1: ...23f2 % 2 = 0 add, ...db06 % 9 + 1 = 7, ...6d5d % 3 = 1 "finds"  -> 8;
  //   step 2: ...2fa4 % 2 = 0 add, ...7dd5 % 9 + 1 = 2, ...77ae % 3 = 2 "buys"   -> 10.
  const auto problems = synthetic_problems(options_for(1, 42));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].question,
            "Liz has 1 pen. She finds 7 more. She buys 2 more. How many pens now?");
  EXPECT_EQ(problems[0].solution, "1+7=8\n8+2=10\nThe answer is \\boxed{10}.");
  EXPECT_EQ(problems[0].answer, "#### 10");
}

TEST(Synthetic, EveryStepIsCorrectArithmeticAndTheAnswerIsTheLastResult) {
  const std::regex step_line(R"((\d+)([+-])(\d+)=(\d+))");
  const std::regex start_value(R"(^[A-Z][a-z]+ has (\d+) [a-z]+\.)");
  for (const auto& problem : synthetic_problems(options_for(500, 7))) {
    SCOPED_TRACE(problem.question + "\n" + problem.solution);
    const auto lines = split_lines(problem.solution);
    ASSERT_GE(lines.size(), 3u);
    ASSERT_LE(lines.size(), 4u); // 2..3 steps + the answer line
    std::smatch start;
    ASSERT_TRUE(std::regex_search(problem.question, start, start_value));
    int value = std::stoi(start[1]);
    for (size_t i = 0; i + 1 < lines.size(); ++i) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(lines[i], m, step_line)) << lines[i];
      const int lhs = std::stoi(m[1]), operand = std::stoi(m[3]), result = std::stoi(m[4]);
      EXPECT_EQ(lhs, value) << "a step continues from the previous result";
      EXPECT_GE(operand, 1);
      EXPECT_LE(operand, 9);
      EXPECT_EQ(result, m[2] == "+" ? lhs + operand : lhs - operand);
      EXPECT_GE(result, 0);
      EXPECT_LE(result, 99);
      EXPECT_NE(problem.question.find(" " + std::to_string(operand)), std::string::npos);
      value = result;
    }
    EXPECT_EQ(lines.back(), "The answer is \\boxed{" + std::to_string(value) + "}.");
    EXPECT_EQ(problem.answer, "#### " + std::to_string(value));
  }
}

TEST(Synthetic, TextsAreShort) {
  for (const auto& problem : synthetic_problems(options_for(500, 3))) {
    EXPECT_GE(problem.question.size(), 40u) << problem.question;
    EXPECT_LE(problem.question.size(), 95u) << problem.question;
    EXPECT_GE(problem.solution.size(), 30u) << problem.solution;
    EXPECT_LE(problem.solution.size(), 60u) << problem.solution;
  }
}

TEST(Synthetic, SameSeedSameProblemsOtherSeedOtherProblems) {
  const auto a = synthetic_problems(options_for(50, 11));
  const auto b = synthetic_problems(options_for(50, 11));
  const auto c = synthetic_problems(options_for(50, 12));
  ASSERT_EQ(a.size(), 50u);
  int differing = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].question, b[i].question);
    EXPECT_EQ(a[i].solution, b[i].solution);
    differing += a[i].question != c[i].question;
  }
  EXPECT_GT(differing, 40);
}

TEST(Synthetic, QuestionsAreDistinct) {
  const auto problems = synthetic_problems(options_for(2000, 5));
  std::set<std::string> questions;
  for (const auto& problem : problems) questions.insert(problem.question);
  EXPECT_EQ(questions.size(), problems.size());
}

TEST(Synthetic, StepRangeIsHonoured) {
  SyntheticOptions options = options_for(100, 9);
  options.min_steps = options.max_steps = 1;
  for (const auto& problem : synthetic_problems(options))
    EXPECT_EQ(split_lines(problem.solution).size(), 2u) << problem.solution;
}

TEST(Synthetic, ImpossibleOptionsAreBadInput) {
  SyntheticOptions steps = options_for(1, 0);
  steps.min_steps = 3;
  steps.max_steps = 2;
  SyntheticOptions operand = options_for(1, 0);
  operand.max_operand = 100;
  // One step with operand 1: 16 people x 10 objects x (3 gain + 3 loss phrases) = 960 questions.
  SyntheticOptions too_many = options_for(961, 0);
  too_many.min_steps = too_many.max_steps = 1;
  too_many.max_operand = 1;
  for (const auto& options : {options_for(-1, 0), steps, operand, too_many}) {
    try {
      synthetic_problems(options);
      ADD_FAILURE() << "accepted count " << options.count;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    }
  }
  too_many.count = 960;
  EXPECT_EQ(synthetic_problems(too_many).size(), 960u);
}

class SyntheticDataset : public testing::Test {
protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("treerpo-synthetic-" + std::to_string(getpid()) + "-" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(SyntheticDataset, SplitsHaveGsm8kFieldsAndDoNotOverlap) {
  write_synthetic_dataset(dir_.string(), 300, 60, 21);
  const auto train = read_jsonl(dir_ / "train.jsonl");
  const auto test = read_jsonl(dir_ / "test.jsonl");
  ASSERT_EQ(train.size(), 300u);
  ASSERT_EQ(test.size(), 60u);
  std::set<std::string> test_questions;
  for (const auto& record : test) test_questions.insert(record["question"].get<std::string>());
  for (const auto& record : train)
    EXPECT_EQ(test_questions.count(record["question"].get<std::string>()), 0u);
  for (const auto* split : {&train, &test}) {
    for (const auto& record : *split) {
      const std::string solution = record["solution"], answer = record["answer"];
      const auto box = solution.rfind("\\boxed{");
      ASSERT_NE(box, std::string::npos);
      const std::string n = solution.substr(box + 7, solution.find('}', box) - box - 7);
      EXPECT_EQ(answer, solution + "\n#### " + n);
    }
  }
}

TEST_F(SyntheticDataset, HeldOutSplitDoesNotDependOnTrainSize) {
  write_synthetic_dataset((dir_ / "small").string(), 10, 20, 4);
  write_synthetic_dataset((dir_ / "large").string(), 500, 20, 4);
  const auto small = read_jsonl(dir_ / "small" / "test.jsonl");
  const auto large = read_jsonl(dir_ / "large" / "test.jsonl");
  EXPECT_EQ(small, large);
  EXPECT_EQ(read_jsonl(dir_ / "large" / "train.jsonl").front(),
            read_jsonl(dir_ / "small" / "train.jsonl").front());
}

} // namespace
} // namespace treerpo::train
