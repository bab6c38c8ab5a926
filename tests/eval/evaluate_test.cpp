// Evaluation end to end on a tiny random Qwen2 with a real tokenizer and four GSM8K problems:
// greedy is deterministic and truly greedy, maj@k samples are seeded, --out resumes to the same
// file, and an --out file of another run is refused.
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tiny_eval_model.h"
#include "treerpo/eval/evaluate.h"
#include "treerpo/tokenizer/chat.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/util/error.h"

namespace {

using namespace treerpo;
using eval::EvalOptions;
using eval::testing::TempDir;
using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> read_lines(const std::string& path) {
  std::vector<json> lines;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

class Evaluate : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    eval::testing::write_tiny_model(dir_->str());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    tok_ = tokenizer::Tokenizer::load(dir_->str());
    model_ = std::make_unique<model::Qwen2>(
        model::Qwen2::load(dir_->str(), torch::kFloat32, torch::kCPU));
  }
  eval::EvalSummary run(const EvalOptions& o, const std::string& out) {
    return eval::evaluate(*model_, *tok_, problems_, o, out);
  }
  static EvalOptions short_answers() {
    EvalOptions o;
    o.max_new_tokens = 12;
    o.batch = 4;
    return o;
  }

  static TempDir* dir_;
  TempDir work_;
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  std::unique_ptr<model::Qwen2> model_;
  std::vector<eval::Problem> problems_ = eval::testing::gsm8k_fixture();
};
TempDir* Evaluate::dir_ = nullptr;

TEST_F(Evaluate, GreedyIsDeterministic) {
  const EvalOptions o = short_answers();
  run(o, work_ / "a.jsonl");
  run(o, work_ / "b.jsonl");
  const auto lines = read_lines(work_ / "a.jsonl");
  ASSERT_EQ(lines.size(), 4U);
  EXPECT_EQ(read_file(work_ / "a.jsonl"), read_file(work_ / "b.jsonl"));
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["index"], i);
    EXPECT_EQ(lines[i]["question"], problems_[i].question);
    EXPECT_EQ(lines[i]["gold"], problems_[i].answer);
    EXPECT_FALSE(lines[i].contains("maj"));
  }
  EXPECT_EQ(lines[0]["gold_answer"], "18");
}

TEST_F(Evaluate, GreedyAnswerIsArgmaxOfFullForward) {
  // Reference: re-run the whole sequence through the cache-free forward at every step and take
  // the argmax, stopping at <|im_end|> / <|endoftext|> or after max_new_tokens.
  const EvalOptions o = short_answers();
  run(o, work_ / "greedy.jsonl");
  const auto lines = read_lines(work_ / "greedy.jsonl");
  const auto eos = tok_->eos_ids();
  for (size_t i = 0; i < problems_.size(); ++i) {
    std::vector<int32_t> ids = tok_->encode(tokenizer::qwen_math_prompt(problems_[i].question));
    std::vector<int32_t> answer;
    bool stopped = false;
    while (static_cast<int64_t>(answer.size()) < o.max_new_tokens && !stopped) {
      const auto next =
          static_cast<int32_t>(model_->forward(ids).select(0, -1).argmax().item<int64_t>());
      ids.push_back(next);
      answer.push_back(next);
      stopped = std::find(eos.begin(), eos.end(), next) != eos.end();
    }
    const json& greedy = lines[i]["greedy"];
    EXPECT_EQ(greedy["text"], tok_->decode(answer)) << "problem " << i;
    EXPECT_EQ(greedy["tokens"], answer.size());
    EXPECT_EQ(greedy["finish"], stopped ? "stop" : "length");
    // A random model writes no \boxed{}: no answer, counted wrong.
    EXPECT_TRUE(greedy["extracted"].is_null());
    EXPECT_EQ(greedy["correct"], false);
  }
}

TEST_F(Evaluate, GreedyAnswersDoNotDependOnMaj) {
  EvalOptions o = short_answers();
  run(o, work_ / "greedy.jsonl");
  o.maj = 2;
  run(o, work_ / "both.jsonl");
  const auto greedy = read_lines(work_ / "greedy.jsonl"), both = read_lines(work_ / "both.jsonl");
  ASSERT_EQ(both.size(), greedy.size());
  for (size_t i = 0; i < greedy.size(); ++i) EXPECT_EQ(both[i]["greedy"], greedy[i]["greedy"]);
}

TEST_F(Evaluate, MajSamplesAreSeededAndRecorded) {
  EvalOptions o = short_answers();
  o.greedy = false;
  o.maj = 3;
  o.seed = 11;
  const auto s = run(o, work_ / "a.jsonl");
  run(o, work_ / "b.jsonl");
  o.seed = 12;
  run(o, work_ / "c.jsonl");
  EXPECT_EQ(read_file(work_ / "a.jsonl"), read_file(work_ / "b.jsonl"));
  EXPECT_NE(read_file(work_ / "a.jsonl"), read_file(work_ / "c.jsonl"));
  const auto lines = read_lines(work_ / "a.jsonl");
  ASSERT_EQ(lines.size(), 4U);
  int64_t tokens = 0;
  for (const json& line : lines) {
    EXPECT_FALSE(line.contains("greedy"));
    ASSERT_EQ(line["maj"]["k"], 3);
    ASSERT_EQ(line["maj"]["samples"].size(), 3U);
    for (const json& sample : line["maj"]["samples"]) tokens += sample["tokens"].get<int64_t>();
    // No sample has a \boxed{} answer: no vote, counted wrong.
    EXPECT_TRUE(line["maj"]["vote"]["answer"].is_null());
    EXPECT_EQ(line["maj"]["vote"]["correct"], false);
  }
  // Temperature 0.7 on a random model: the three samples of a problem are not all alike.
  EXPECT_NE(lines[0]["maj"]["samples"][0]["text"], lines[0]["maj"]["samples"][1]["text"]);
  EXPECT_EQ(s.problems, 4);
  EXPECT_EQ(s.maj, 3);
  EXPECT_EQ(s.maj_correct, 0);
  EXPECT_EQ(s.generated_tokens, tokens);
  EXPECT_DOUBLE_EQ(s.mean_generated_tokens, static_cast<double>(tokens) / 12.0);
}

TEST_F(Evaluate, ResumeWritesTheSameFileAsAnUninterruptedRun) {
  EvalOptions o = short_answers();
  o.maj = 2;
  o.batch = 2;
  run(o, work_ / "whole.jsonl");

  const std::string out = work_ / "resumed.jsonl";
  EvalOptions first_half = o;
  first_half.limit = 2;
  run(first_half, out);
  ASSERT_EQ(read_lines(out).size(), 2U);
  // An interruption in the middle of writing the second line.
  const auto size = std::filesystem::file_size(out);
  std::filesystem::resize_file(out, size - 20);

  const auto s = run(o, out);
  EXPECT_EQ(read_file(out), read_file(work_ / "whole.jsonl"));
  EXPECT_EQ(s.problems, 4);
  EXPECT_EQ(s.resumed, 1);
  const auto lines = read_lines(out);
  int64_t tokens = 0;
  for (const json& line : lines) {
    tokens += line["greedy"]["tokens"].get<int64_t>();
    for (const json& sample : line["maj"]["samples"]) tokens += sample["tokens"].get<int64_t>();
  }
  // The summary counts the resumed problem from the file: 4 problems x (1 greedy + 2 samples).
  EXPECT_DOUBLE_EQ(s.mean_generated_tokens, static_cast<double>(tokens) / 12.0);

  // Everything done: nothing is generated and the file is untouched.
  const auto again = run(o, out);
  EXPECT_EQ(again.resumed, 4);
  EXPECT_EQ(again.generated_tokens, 0);
  EXPECT_EQ(read_file(out), read_file(work_ / "whole.jsonl"));
}

TEST_F(Evaluate, OutFileOfAnotherRunIsRefused) {
  const std::string out = work_ / "greedy.jsonl";
  run(short_answers(), out);
  const auto exit_code_of = [&](const EvalOptions& o) {
    try {
      run(o, out);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(out + ":1"), std::string::npos) << e.what();
      return e.exit_code();
    }
    return 0;
  };
  EvalOptions with_maj = short_answers();
  with_maj.maj = 2;
  EXPECT_EQ(exit_code_of(with_maj), 2);
  std::swap(problems_[0], problems_[1]);
  EXPECT_EQ(exit_code_of(short_answers()), 2);
}

TEST_F(Evaluate, SummaryReportsAccuracyWithInterval) {
  const auto s = run(short_answers(), "");
  EXPECT_EQ(s.problems, 4);
  EXPECT_EQ(s.resumed, 0);
  EXPECT_TRUE(s.greedy);
  EXPECT_EQ(s.greedy_correct, 0);
  EXPECT_EQ(s.greedy_accuracy, 0.0);
  // Wilson 95% for 0 of 4: [0, z^2/(n + z^2)] = [0, 3.8415 / 7.8415].
  EXPECT_NEAR(s.greedy_ci_high, 0.48990, 1e-4);
  EXPECT_GT(s.generated_tokens, 0);
  EXPECT_LE(s.mean_generated_tokens, 12.0);
  const json j = json::parse(eval::summary_json(s));
  EXPECT_EQ(j["problems"], 4);
  EXPECT_EQ(j["greedy"]["accuracy"], 0.0);
  EXPECT_NEAR(j["greedy"]["ci95"][1].get<double>(), 48.990, 1e-2);
  EXPECT_FALSE(j.contains("maj"));
}

TEST_F(Evaluate, BadOptionsAreBadInput) {
  EvalOptions o = short_answers();
  o.greedy = false;
  try {
    run(o, "");
    FAIL() << "greedy off and maj 0 must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
  }
}

} // namespace
