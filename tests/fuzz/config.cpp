// libFuzzer target: the YAML config and --set values through load_config (parse, overrides,
// validation). The input is split at its first NUL into the YAML file and the --set values, one a
// line. Beyond "no crash": an accepted config survives to_yaml and loads back to the same YAML.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "files.h"
#include "treerpo/config/config.h"
#include "treerpo/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto [yaml, sets] = treerpo::fuzz::split_at_nul(data, size);
  std::vector<std::string> overrides;
  for (std::size_t start = 0; start < sets.size();) {
    std::size_t end = sets.find('\n', start);
    if (end == std::string_view::npos) end = sets.size();
    overrides.emplace_back(sets.substr(start, end - start));
    start = end + 1;
  }
  std::string text;
  try {
    text = treerpo::to_yaml(
        treerpo::load_config(treerpo::fuzz::write_file("config.yaml", yaml), overrides));
  } catch (const treerpo::Error&) {
    return 0;
  }
  const std::string again =
      treerpo::to_yaml(treerpo::load_config(treerpo::fuzz::write_file("effective.yaml", text)));
  if (again != text) std::abort();
  return 0;
}
