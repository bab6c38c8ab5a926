#pragma once
// The demo's synthetic task: short multi-step arithmetic word problems, one reasoning step a line
// and a \boxed{} answer, generated identically on every platform from a seed.
#include <cstdint>
#include <string>
#include <vector>

namespace treerpo::train {

struct SyntheticProblem {
  std::string
      question; // "Ann has 3 apples. She gets 4 more. She gives 2 away. How many apples now?"
  std::string solution; // "3+4=7\n7-2=5\nThe answer is \boxed{5}."
  std::string answer;   // "#### 5"
};

struct SyntheticOptions {
  int64_t count = 0;
  uint64_t seed = 0;
  int min_steps = 2, max_steps = 3; // arithmetic steps (lines before the answer line)
  int max_operand = 9;              // start value and every operand in 1..max_operand
};

// `count` problems with distinct questions; every intermediate result stays in 0..99.
std::vector<SyntheticProblem> synthetic_problems(const SyntheticOptions& options);

// Writes DIR/test.jsonl (the first test_count problems, so the held-out split does not depend on
// train_count) and DIR/train.jsonl (the next train_count), with fields question, answer (GSM8K
// style: solution + "\n#### N") and solution. No question appears twice across both files.
void write_synthetic_dataset(const std::string& dir, int64_t train_count, int64_t test_count,
                             uint64_t seed);

} // namespace treerpo::train
