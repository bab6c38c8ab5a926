// The synthetic arithmetic task. The draw order below is the format: changing it changes every
// dataset a seed names, so tests pin the first problem of a seed.
#include "treerpo/train/synthetic.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "treerpo/util/error.h"
#include "treerpo/util/rng.h"

namespace treerpo::train {
namespace {

// lo + next() mod (hi - lo + 1): fixed by definition, unlike std::uniform_int_distribution, whose
// mapping differs between standard libraries; the modulo bias (< 2^-57 here) does not matter for a
// toy task.
int uniform(SplitMix64& rng, int lo, int hi) {
  return lo + static_cast<int>(rng.next() % static_cast<uint64_t>(hi - lo + 1));
}

struct Person {
  const char* name;
  const char* pronoun;
};
constexpr Person kPeople[] = {{"Ann", "She"}, {"Bea", "She"}, {"Eve", "She"}, {"Ivy", "She"},
                              {"Kim", "She"}, {"Liz", "She"}, {"Mia", "She"}, {"Zoe", "She"},
                              {"Bob", "He"},  {"Dan", "He"},  {"Gus", "He"},  {"Jim", "He"},
                              {"Leo", "He"},  {"Max", "He"},  {"Sam", "He"},  {"Tom", "He"}};
constexpr const char* kObjects[] = {"apple", "pen", "card", "egg",  "coin",
                                    "book",  "cup", "hat",  "ball", "shell"};
// Each phrase holds one "#" for the operand.
constexpr const char* kGains[] = {"gets # more", "finds # more", "buys # more"};
constexpr const char* kLosses[] = {"gives # away", "loses #", "sells #"};
constexpr int kMaxValue = 99;

template <typename T, size_t N> int last_index(const T (&)[N]) {
  return static_cast<int>(N) - 1;
}

std::string fill(const char* phrase, int operand) {
  std::string text = phrase;
  text.replace(text.find('#'), 1, std::to_string(operand));
  return text;
}

// Draw order: person, object, step count, start value; then per step the operation (only when
// both are possible: 0 = add), the operand, the phrase.
SyntheticProblem draw_problem(SplitMix64& rng, const SyntheticOptions& options) {
  const Person& person = kPeople[uniform(rng, 0, last_index(kPeople))];
  const std::string object = kObjects[uniform(rng, 0, last_index(kObjects))];
  const int steps = uniform(rng, options.min_steps, options.max_steps);
  int value = uniform(rng, 1, options.max_operand);

  SyntheticProblem problem;
  problem.question = std::string(person.name) + " has " + std::to_string(value) + " " + object +
                     (value == 1 ? "" : "s") + ".";
  for (int step = 0; step < steps; ++step) {
    bool add = value == 0 || (value < kMaxValue && uniform(rng, 0, 1) == 0);
    const int operand =
        uniform(rng, 1, std::min(options.max_operand, add ? kMaxValue - value : value));
    const char* phrase = add ? kGains[uniform(rng, 0, last_index(kGains))]
                             : kLosses[uniform(rng, 0, last_index(kLosses))];
    const int result = add ? value + operand : value - operand;
    problem.question += " " + std::string(person.pronoun) + " " + fill(phrase, operand) + ".";
    problem.solution += std::to_string(value) + (add ? "+" : "-") + std::to_string(operand) + "=" +
                        std::to_string(result) + "\n";
    value = result;
  }
  problem.question += " How many " + object + "s now?";
  problem.solution += "The answer is \\boxed{" + std::to_string(value) + "}.";
  problem.answer = "#### " + std::to_string(value);
  return problem;
}

void check_options(const SyntheticOptions& options) {
  const std::string where = "synthetic task options";
  if (options.count < 0)
    throw bad_input("problem count " + std::to_string(options.count) + " is negative", where,
                    "ask for 0 or more problems");
  if (options.min_steps < 1 || options.max_steps < options.min_steps)
    throw bad_input("steps range " + std::to_string(options.min_steps) + ".." +
                        std::to_string(options.max_steps) + " is empty or below 1",
                    where, "use 1 <= min_steps <= max_steps");
  if (options.max_operand < 1 || options.max_operand > kMaxValue)
    throw bad_input("max_operand " + std::to_string(options.max_operand) + " is outside 1..99",
                    where, "pick a max_operand in 1..99");
}

void write_jsonl(const std::string& path, std::vector<SyntheticProblem>::const_iterator begin,
                 std::vector<SyntheticProblem>::const_iterator end) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (auto it = begin; it != end; ++it) {
    nlohmann::ordered_json line;
    line["question"] = it->question;
    line["answer"] = it->solution + "\n" + it->answer;
    line["solution"] = it->solution;
    out << line.dump() << '\n';
  }
  out.flush();
  if (!out)
    throw runtime_failure("cannot write the synthetic data set", path,
                          "check that the directory is writable and the disk has space");
}

} // namespace

std::vector<SyntheticProblem> synthetic_problems(const SyntheticOptions& options) {
  check_options(options);
  SplitMix64 rng(options.seed);
  std::vector<SyntheticProblem> problems;
  std::unordered_set<std::string> questions;
  // Small option ranges have few distinct problems; give up long after duplicates dominate.
  const int64_t max_draws = 1000 + 100 * options.count;
  for (int64_t draws = 0; static_cast<int64_t>(problems.size()) < options.count; ++draws) {
    if (draws == max_draws)
      throw bad_input("only " + std::to_string(problems.size()) + " distinct problems found for " +
                          std::to_string(options.count) + " requested",
                      "synthetic task options", "raise max_operand or max_steps, or ask for fewer");
    SyntheticProblem problem = draw_problem(rng, options);
    if (questions.insert(problem.question).second) problems.push_back(std::move(problem));
  }
  return problems;
}

void write_synthetic_dataset(const std::string& dir, int64_t train_count, int64_t test_count,
                             uint64_t seed) {
  if (train_count < 0 || test_count < 0)
    throw bad_input("negative split size", "synthetic data set " + dir,
                    "ask for 0 or more train and test problems");
  SyntheticOptions options;
  options.count = train_count + test_count;
  options.seed = seed;
  const auto problems = synthetic_problems(options);
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error)
    throw runtime_failure("cannot create the data directory: " + error.message(), dir,
                          "choose a writable directory");
  const auto split = problems.begin() + test_count;
  write_jsonl((std::filesystem::path(dir) / "test.jsonl").string(), problems.begin(), split);
  write_jsonl((std::filesystem::path(dir) / "train.jsonl").string(), split, problems.end());
}

} // namespace treerpo::train
