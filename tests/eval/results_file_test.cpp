// The eval --out file read back on resume: a field that must be an integer but holds a number out
// of int64's range, or a fraction, is one bad-input line naming file:line (found by fuzzing:
// nlohmann's conversion of 5.6e111 to int64 was undefined behaviour, flagged by UBSan).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../../src/eval/results_file.h"
#include "treerpo/util/error.h"

namespace treerpo::eval {
namespace {

namespace fs = std::filesystem;

const std::vector<Problem> kProblems = {{"What is 2+3?", "#### 5", 1}};

std::string line_with(const std::string& tokens) {
  return R"({"index":0,"line":1,"question":"What is 2+3?","gold":"#### 5","gold_answer":"5",)"
         R"("greedy":{"text":"5","tokens":)" +
         tokens + R"(,"finish":"stop","extracted":"5","correct":true}})";
}

TEST(ResultsFile, NonIntegerCountsAreOneBadInputLine) {
  const fs::path file = fs::temp_directory_path() / ("treerpo_results_" + std::to_string(getpid()));
  EvalOptions options;
  options.greedy = true;
  {
    std::ofstream(file) << line_with("3") << "\n";
    ResultsFile ok(file.string(), kProblems, options);
    EXPECT_EQ(ok.done().size(), 1U);
  }
  for (const std::string bad : {"5555555555555555555555555555555555555555", "2.5", "1e300",
                                "18446744073709551615", "\"7\""}) {
    std::ofstream(file) << line_with(bad) << "\n";
    try {
      ResultsFile read(file.string(), kProblems, options);
      FAIL() << "accepted tokens " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput);
      const std::string what = e.what();
      EXPECT_NE(what.find(file.string() + ":1"), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
  fs::remove(file);
}

} // namespace
} // namespace treerpo::eval
