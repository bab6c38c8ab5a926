#pragma once
// Problems from JSONL files, one problem a line, field names configurable (GSM8K: question/answer;
// NuminaMath exports: problem/solution). Shared by training, SFT and evaluation.
#include <cstdint>
#include <string>
#include <vector>

namespace treerpo::eval {

struct Problem {
  std::string question;
  std::string
      answer; // gold: a GSM8K answer with "#### n", a solution with \boxed{}, or a bare answer
  int64_t line = 0; // 1-based line in the file, for messages and per-problem output
};

// Reads every non-blank line. Throws treerpo::Error (bad input) naming `path:line` for a line that
// is not a JSON object or lacks a field, and naming the path for a missing or empty file. Numbers
// are accepted as answers (as text).
std::vector<Problem> load_problems(const std::string& path, const std::string& question_field,
                                   const std::string& answer_field);

} // namespace treerpo::eval
