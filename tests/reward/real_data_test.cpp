// The checker on real benchmark data (shared/data): gold solutions must check as equal to their own
// gold answers. Measured rates are printed; the exact set of known misses is asserted so a
// regression fails.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "treerpo/reward/checker.h"

namespace treerpo::reward {
namespace {

namespace fs = std::filesystem;

fs::path data_dir() {
  return fs::path(TREERPO_SHARED_DIR) / "data";
}

std::vector<nlohmann::json> read_jsonl(const fs::path& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

#define REQUIRE_DATA(relative)                                                                     \
  if (!fs::exists(data_dir() / relative))                                                          \
  GTEST_SKIP() << "shared data " << (data_dir() / relative)                                        \
               << " is absent; set TREERPO_SHARED_DIR at configure time to run this test"

void report(const char* file, std::size_t hits, std::size_t total) {
  std::printf("[ rate     ] %s: %zu / %zu = %.4f\n", file, hits, total,
              total ? static_cast<double>(hits) / static_cast<double>(total) : 0.0);
}

// The last number written in a GSM8K chain of thought, ignoring the <<a*b=c>> calculator notes.
std::string last_number_of_reasoning(const std::string& answer) {
  std::string text = answer.substr(0, answer.rfind("####"));
  std::string clean;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "<<") == 0) {
      std::size_t close = text.find(">>", i);
      if (close != std::string::npos) {
        i = close + 1;
        continue;
      }
    }
    clean += text[i];
  }
  std::string last, current;
  for (std::size_t i = 0; i <= clean.size(); ++i) {
    char c = i < clean.size() ? clean[i] : ' ';
    bool digit = c >= '0' && c <= '9';
    bool inside = !current.empty() && (c == '.' || c == ',') && i + 1 < clean.size() &&
                  clean[i + 1] >= '0' && clean[i + 1] <= '9';
    if (digit || inside) {
      current += c;
    } else if (!current.empty()) {
      last = current;
      current.clear();
    }
  }
  return last;
}

// Every GSM8K gold answer has a "####" number that checks equal to itself written without thousands
// separators, and a response boxing it is correct against the whole gold solution.
TEST(RealData, EveryGsm8kHashAnswerChecksAgainstItsGoldSolution) {
  REQUIRE_DATA("gsm8k/train.jsonl");
  for (const char* file : {"gsm8k/train.jsonl", "gsm8k/test.jsonl"}) {
    std::size_t hits = 0, total = 0;
    for (const nlohmann::json& row : read_jsonl(data_dir() / file)) {
      std::string answer = row.at("answer").get<std::string>();
      ++total;
      std::optional<std::string> gold = gsm8k_gold(answer);
      ASSERT_TRUE(gold.has_value()) << answer;
      std::string digits;
      for (char c : *gold) {
        if (c != ',') digits += c;
      }
      bool ok = check("The answer is $\\boxed{" + *gold + "}$.", answer).correct &&
                answers_equal(digits, *gold) && answers_equal(*gold, digits) &&
                !answers_equal(*gold, digits + "1");
      EXPECT_TRUE(ok) << file << ": " << *gold;
      hits += ok;
    }
    report(file, hits, total);
    EXPECT_EQ(hits, total);
  }
}

// The chain of thought's last number is the final answer in most GSM8K solutions; where it is not,
// the solution ends with a different quantity (units, a restated intermediate) - listed in the
// report.
TEST(RealData, Gsm8kReasoningUsuallyEndsWithTheHashAnswer) {
  REQUIRE_DATA("gsm8k/train.jsonl");
  for (auto [file, expected_hits] : {std::pair<const char*, std::size_t>{"gsm8k/train.jsonl", 7261},
                                     {"gsm8k/test.jsonl", 1281}}) {
    std::size_t hits = 0, total = 0;
    std::vector<nlohmann::json> rows = read_jsonl(data_dir() / file);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::string answer = rows[i].at("answer").get<std::string>();
      std::string last = last_number_of_reasoning(answer);
      ++total;
      if (check("\\boxed{" + last + "}", answer).correct) {
        ++hits;
      } else if (std::getenv("TREERPO_SHOW_MISSES")) {
        std::printf("[ miss     ] %s:%zu last=%s gold=%s\n", file, i + 1, last.c_str(),
                    gsm8k_gold(answer).value_or("").c_str());
      }
    }
    report(file, hits, total);
    EXPECT_EQ(hits, expected_hits) << file;
  }
}

struct MathEvalRate {
  std::size_t hits = 0, total = 0;
  std::set<std::size_t> misses; // 1-based line numbers
};

MathEvalRate boxed_solution_rate(const char* file, const char* solution_field,
                                 const char* answer_field) {
  MathEvalRate rate;
  std::vector<nlohmann::json> rows = read_jsonl(data_dir() / file);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const nlohmann::json& row = rows[i];
    std::string solution = row.at(solution_field).get<std::string>();
    std::optional<std::string> boxed = extract_answer(solution);
    if (!boxed) continue;
    const nlohmann::json& answer = answer_field ? row.at(answer_field) : nlohmann::json(*boxed);
    std::string gold = answer.is_string() ? answer.get<std::string>() : answer.dump();
    ++rate.total;
    if (check(solution, gold).correct) {
      ++rate.hits;
    } else {
      rate.misses.insert(i + 1);
      std::printf("[ miss     ] %s:%zu boxed=%s gold=%s\n", file, i + 1, boxed->c_str(),
                  gold.c_str());
    }
  }
  report(file, rate.hits, rate.total);
  return rate;
}

TEST(RealData, Aime24BoxedSolutionsCheckAgainstTheAnswerField) {
  REQUIRE_DATA("math-eval/aime24.jsonl");
  MathEvalRate rate = boxed_solution_rate("math-eval/aime24.jsonl", "solution", "answer");
  EXPECT_EQ(rate.total, 30u);
  EXPECT_EQ(rate.misses, (std::set<std::size_t>{}));
}

// minerva_math has no answer field: its gold answer is the solution's own \boxed{} (as in the Qwen
// evaluation), so this measures that every solution has a box and that a box checks against itself.
TEST(RealData, MinervaSolutionsAllHaveABoxThatChecksAgainstItself) {
  REQUIRE_DATA("math-eval/minerva_math.jsonl");
  MathEvalRate rate = boxed_solution_rate("math-eval/minerva_math.jsonl", "solution", nullptr);
  EXPECT_EQ(rate.total, 272u);
  EXPECT_EQ(rate.misses, (std::set<std::size_t>{}));
}

// amc23 has no solutions; its answers are JSON numbers (27.0): the integer a model would box must
// match.
TEST(RealData, Amc23IntegerAnswersMatchTheirFloatGold) {
  REQUIRE_DATA("math-eval/amc23.jsonl");
  std::size_t hits = 0, total = 0;
  for (const nlohmann::json& row : read_jsonl(data_dir() / "math-eval/amc23.jsonl")) {
    double gold = row.at("answer").get<double>();
    ++total;
    bool ok = check("\\boxed{" + std::to_string(static_cast<long long>(gold)) + "}",
                    row.at("answer").dump())
                  .correct;
    EXPECT_TRUE(ok) << row.at("answer").dump();
    hits += ok;
  }
  report("math-eval/amc23.jsonl", hits, total);
}

// olympiadbench solutions carry no \boxed{}; what can be checked is that each final answer, boxed
// as a model would write it (without the $ signs), checks against the gold field as written.
TEST(RealData, OlympiadbenchFinalAnswersCheckAgainstThemselvesBoxed) {
  REQUIRE_DATA("math-eval/olympiadbench.jsonl");
  std::size_t hits = 0, total = 0;
  std::vector<nlohmann::json> rows = read_jsonl(data_dir() / "math-eval/olympiadbench.jsonl");
  std::set<std::size_t> misses;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (const nlohmann::json& answer : rows[i].at("final_answer")) {
      std::string gold = answer.get<std::string>();
      std::string bare;
      for (char c : gold) {
        if (c != '$') bare += c;
      }
      ++total;
      if (check("\\boxed{" + bare + "}", gold).correct) {
        ++hits;
      } else {
        misses.insert(i + 1);
        std::printf("[ miss     ] olympiadbench:%zu %s\n", i + 1, gold.c_str());
      }
    }
  }
  report("math-eval/olympiadbench.jsonl", hits, total);
  EXPECT_EQ(misses, (std::set<std::size_t>{}));
}

} // namespace
} // namespace treerpo::reward
