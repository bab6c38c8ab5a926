#pragma once
// The per-problem JSONL behind `eval --out`: one line per problem, appended as batches finish and
// read back on resume, so the summary of a resumed run counts every problem once.
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "treerpo/eval/dataset.h"
#include "treerpo/eval/evaluate.h"
#include "treerpo/eval/vote.h"

namespace treerpo::eval {

struct Sample {
  std::string text; // the decoded answer, special tokens kept (as the checker sees it)
  int64_t tokens = 0;
  bool stopped = false; // ended at an end-of-turn token (else at max_new_tokens)
  std::optional<std::string> extracted;
  bool correct = false;
};

struct ProblemResult {
  int64_t index = 0; // position in the problem list
  std::optional<Sample> greedy;
  std::vector<Sample> samples; // maj@k samples; empty when maj@k is off
  Vote vote;
};

// What problems add to the summary.
struct Tally {
  int64_t problems = 0, greedy_correct = 0, maj_correct = 0, samples = 0, tokens = 0;
  void add(const Tally& other);
};

Tally tally(const ProblemResult& result);

// One JSON object (no newline): index, line, question, gold, gold answer, greedy sample, maj
// samples and vote.
std::string result_line(const ProblemResult& result, const Problem& problem);

class ResultsFile {
public:
  // Reads the lines already in `path` (the file is created when missing). A last line without its
  // newline was torn by an interruption: it is cut off, and its problem is redone. Lines must
  // belong to `problems` (same question at the same index) and to the same greedy / maj@k choice;
  // lines past `problems` (an earlier run without --limit) are kept and not counted.
  ResultsFile(std::string path, const std::vector<Problem>& problems, const EvalOptions& options);
  // Problems in the file, by index, with their scores.
  const std::map<int64_t, Tally>& done() const { return done_; }
  // Appends lines and flushes them, so an interruption loses at most the batch being decoded.
  void append(const std::vector<std::string>& lines);

private:
  std::string path_;
  std::map<int64_t, Tally> done_;
  std::ofstream out_;
};

} // namespace treerpo::eval
