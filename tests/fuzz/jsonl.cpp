// libFuzzer target: a training / SFT / eval JSONL file through load_problems (the one reader all
// three use), with GSM8K's and NuminaMath's field names. Beyond "no crash": every problem read
// names a line of the file.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "files.h"
#include "treerpo/eval/dataset.h"
#include "treerpo/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::string path = treerpo::fuzz::write_file("data.jsonl", bytes);
  const auto lines = static_cast<int64_t>(std::count(bytes.begin(), bytes.end(), '\n')) + 1;
  for (const auto& [question, answer] :
       {std::pair{"question", "answer"}, {"problem", "solution"}}) {
    try {
      for (const auto& p : treerpo::eval::load_problems(path, question, answer)) {
        if (p.line < 1 || p.line > lines) std::abort();
      }
    } catch (const treerpo::Error&) {
    }
  }
  return 0;
}
