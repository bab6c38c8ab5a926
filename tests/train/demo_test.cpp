// The demo's SFT split: the careless teacher slips by one at the last step (the demo's task) or at
// any step, every later step then following from the wrong value. Expected solutions are worked by
// hand from the task's arithmetic.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "../common/temp_dir.h"
#include "treerpo/train/demo.h"
#include "treerpo/util/error.h"

namespace treerpo::train {
namespace {

const std::string kThree = "3-2=1\n1+7=8\n8+7=15\nThe answer is \\boxed{15}.";

TEST(SlippedSolution, TheSlippedStepIsOneHighAndTheLaterStepsFollowFromIt) {
  EXPECT_EQ(slipped_solution(kThree, {0}), "3-2=2\n2+7=9\n9+7=16\nThe answer is \\boxed{16}.");
  EXPECT_EQ(slipped_solution(kThree, {1}), "3-2=1\n1+7=9\n9+7=16\nThe answer is \\boxed{16}.");
  EXPECT_EQ(slipped_solution(kThree, {2}), "3-2=1\n1+7=8\n8+7=16\nThe answer is \\boxed{16}.");
  // A subtraction after the slip subtracts from the wrong value.
  EXPECT_EQ(slipped_solution("9+3=12\n12-1=11\n11+2=13\nThe answer is \\boxed{13}.", {0}),
            "9+3=13\n13-1=12\n12+2=14\nThe answer is \\boxed{14}.");
  EXPECT_EQ(slipped_solution("1+9=10\nThe answer is \\boxed{10}.", {0}),
            "1+9=11\nThe answer is \\boxed{11}.");
}

TEST(SlippedSolution, EverySlippedStepAddsOneAndTheStepsBetweenFollow) {
  EXPECT_EQ(slipped_solution(kThree, {0, 2}), "3-2=2\n2+7=9\n9+7=17\nThe answer is \\boxed{17}.");
  EXPECT_EQ(slipped_solution(kThree, {1, 2}), "3-2=1\n1+7=9\n9+7=17\nThe answer is \\boxed{17}.");
  EXPECT_EQ(slipped_solution(kThree, {0, 1, 2}),
            "3-2=2\n2+7=10\n10+7=18\nThe answer is \\boxed{18}.");
}

TEST(FindsSteps, TheQuestionsSentencesAfterTheFirstAreItsSteps) {
  EXPECT_EQ(finds_steps("Zoe has 9 shells. She finds 3 more. She gives 1 away. She finds 2 more. "
                        "How many shells now?"),
            (std::set<size_t>{0, 2}));
  EXPECT_EQ(finds_steps("Gus has 3 cards. He buys 7 more. He finds 4 more. How many cards now?"),
            (std::set<size_t>{1}));
  EXPECT_TRUE(
      finds_steps("Kim has 3 cards. She sells 2. She gets 7 more. How many cards now?").empty());
}

TEST(SlippedSolution, RefusesAStepThatIsNotAStepLineOrALineThatIsNotAStep) {
  EXPECT_THROW(slipped_solution(kThree, {}), Error);
  EXPECT_THROW(slipped_solution(kThree, {3}), Error);
  EXPECT_THROW(slipped_solution("The answer is \\boxed{4}.", {0}), Error);
  EXPECT_THROW(slipped_solution("3 apples\n1+7=8\nThe answer is \\boxed{8}.", {1}), Error);
  EXPECT_THROW(slipped_solution("a+b=c\nThe answer is \\boxed{c}.", {0}), Error);
  EXPECT_THROW(slipped_solution("1+2=\nThe answer is \\boxed{3}.", {0}), Error);
}

std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// Which step each SFT solution of a workspace slipped at (-1: none), checked to be exactly
// slipped_solution of its training solution there.
std::vector<int> slipped_steps(const std::filesystem::path& ws) {
  const auto train = read_jsonl(ws / "data" / "train.jsonl");
  const auto sft = read_jsonl(ws / "data" / "sft.jsonl");
  EXPECT_EQ(train.size(), sft.size());
  std::vector<int> steps;
  for (size_t i = 0; i < train.size() && i < sft.size(); ++i) {
    const std::string gold = train[i]["solution"], taught = sft[i]["solution"];
    EXPECT_EQ(sft[i]["answer"], train[i]["answer"]); // gold answers untouched
    int step = -1;
    for (size_t k = 0; taught != gold && step < 0; ++k) {
      if (k + 1 >= static_cast<size_t>(std::count(gold.begin(), gold.end(), '\n')) + 1) {
        ADD_FAILURE() << "row " << i << " is no slip of its solution: " << taught;
        break;
      }
      if (slipped_solution(gold, {k}) == taught) step = static_cast<int>(k);
    }
    steps.push_back(step);
  }
  return steps;
}

// The demo's workspace with 600 training problems, the careless teacher slipping at `slip`.
void write_small_demo(const std::filesystem::path& dir, DemoOptions::SlipStep slip) {
  DemoOptions options;
  options.train_problems = 600;
  options.test_problems = 4;
  options.sft_slip_step = slip;
  write_demo_workspace(dir.string(), options);
}

TEST(DemoWorkspace, TheCarelessTeacherSlipsAtTheLastStepOrAtAny) {
  treerpo::testing::TempDir dir;
  const std::filesystem::path root(dir.str());
  write_small_demo(root / "last", DemoOptions::SlipStep::Last);
  write_small_demo(root / "any", DemoOptions::SlipStep::Any);
  // The task itself does not change: same problems, same tokenizer.
  EXPECT_EQ(read_jsonl(root / "last" / "data" / "train.jsonl"),
            read_jsonl(root / "any" / "data" / "train.jsonl"));

  for (const std::string mode : {"last", "any"}) {
    SCOPED_TRACE(mode);
    const auto train = read_jsonl(root / mode / "data" / "train.jsonl");
    const std::vector<int> steps = slipped_steps(root / mode);
    // Slips per step (from the first), and what a uniform draw among a solution's steps expects:
    // each slipped solution of s steps adds 1/s to each of its steps (variance (1/s)(1 - 1/s)).
    std::map<int, int> at;
    std::map<int, double> expected, variance;
    int slips = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps[i] < 0) continue;
      ++slips;
      ++at[steps[i]];
      const std::string gold = train[i]["solution"];
      const int lines = static_cast<int>(std::count(gold.begin(), gold.end(), '\n'));
      if (mode == "last") {
        EXPECT_EQ(steps[i], lines - 1);
        continue;
      }
      for (int k = 0; k < lines; ++k) {
        expected[k] += 1.0 / lines;
        variance[k] += (1.0 / lines) * (1.0 - 1.0 / lines);
      }
    }
    // 60% of 600 rows: a binomial's standard deviation is 12 rows; 4 of them either way.
    EXPECT_NEAR(slips, 360, 48);
    if (mode == "any") {
      // Two- and three-step problems: the first, second and third steps all slip.
      ASSERT_EQ(at.size(), 3u);
      for (const auto& [k, mean] : expected) {
        SCOPED_TRACE("step " + std::to_string(k));
        EXPECT_NEAR(at[k], mean, 4 * std::sqrt(variance[k]));
      }
    }
  }
}

// The default workspace's SFT split is the one earlier versions wrote (the demo's figures depend on
// it): its first solutions as the version before slip steps existed wrote them.
TEST(DemoWorkspace, TheLastStepSplitIsTheOneEarlierVersionsWrote) {
  treerpo::testing::TempDir dir;
  const std::filesystem::path root(dir.str());
  write_demo_workspace(root.string(), DemoOptions{});
  const auto sft = read_jsonl(root / "data" / "sft.jsonl");
  ASSERT_GE(sft.size(), 4u);
  EXPECT_EQ(sft[0]["solution"], "3-2=1\n1+7=8\n8+7=16\nThe answer is \\boxed{16}.");
  EXPECT_EQ(sft[1]["solution"], "3+7=10\n10-4=6\nThe answer is \\boxed{6}.");
  EXPECT_EQ(sft[2]["solution"], "9+3=12\n12-1=11\n11+2=13\nThe answer is \\boxed{13}.");
  EXPECT_EQ(sft[3]["solution"], "7+5=12\n12-5=7\n7-3=5\nThe answer is \\boxed{5}.");
}

// "finds": a rule imitation can learn. Solutions whose question has a "finds N more" step slip at
// every such step at the slip rate; the others never slip.
TEST(DemoWorkspace, TheCarelessTeacherSlipsAtEveryFindsStep) {
  treerpo::testing::TempDir dir;
  const std::filesystem::path root(dir.str());
  write_small_demo(root, DemoOptions::SlipStep::Finds);
  const auto train = read_jsonl(root / "data" / "train.jsonl");
  const auto sft = read_jsonl(root / "data" / "sft.jsonl");
  ASSERT_EQ(train.size(), sft.size());
  int with_finds = 0, slips = 0, later = 0;
  for (size_t i = 0; i < train.size(); ++i) {
    const std::string gold = train[i]["solution"], taught = sft[i]["solution"];
    const std::set<size_t> at = finds_steps(train[i]["question"]);
    if (at.empty()) {
      EXPECT_EQ(taught, gold) << "row " << i;
      continue;
    }
    ++with_finds;
    if (taught == gold) continue;
    ++slips;
    EXPECT_EQ(taught, slipped_solution(gold, at)) << "row " << i;
    const auto lines = static_cast<size_t>(std::count(gold.begin(), gold.end(), '\n'));
    later += *at.begin() + 1 < lines; // the slip is not at the last step
  }
  // A "finds" step is one of three gain phrases (gains are about half the steps): about one
  // problem in three of two or three steps has one.
  EXPECT_GT(with_finds, 120);
  EXPECT_LT(with_finds, 300);
  // 60% of them slip: a binomial's standard deviation is at most 12 rows here; 4 either way.
  EXPECT_NEAR(slips, 0.6 * with_finds, 48);
  EXPECT_GT(later, slips / 3); // at every depth, not only the last
}

} // namespace
} // namespace treerpo::train
