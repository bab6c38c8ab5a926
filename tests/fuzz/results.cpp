// libFuzzer target: the per-problem results file of `eval --out`, read back on resume against four
// GSM8K problems, with greedy and maj@4 runs. Beyond "no crash": no more problems are counted done
// than exist.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "files.h"
#include "results_file.h"
#include "treerpo/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace treerpo::eval;
  static const std::vector<Problem> problems = {{"What is 2+3?", "#### 5", 1},
                                                {"What is 6*7?", "#### 42", 2},
                                                {"Halve 9.", "#### 4.5", 3},
                                                {"What is 10-12?", "#### -2", 4}};
  for (int64_t maj : {0, 4}) {
    // The constructor cuts a torn last line off the file: write it afresh for each reading.
    const std::string path = treerpo::fuzz::write_file(
        "out.jsonl", std::string_view(reinterpret_cast<const char*>(data), size));
    EvalOptions options;
    options.greedy = maj == 0;
    options.maj = maj;
    try {
      ResultsFile file(path, problems, options);
      if (file.done().size() > problems.size()) std::abort();
    } catch (const treerpo::Error&) {
    }
  }
  return 0;
}
