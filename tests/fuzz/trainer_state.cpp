// libFuzzer target: what resume reads before the weights: trainer_state.json (read_trainer_state)
// and the checkpoint's SHA256SUMS (parse_checksums). The input is split at its first NUL into the
// two files.
#include <cstddef>
#include <cstdint>
#include <string>

#include "files.h"
#include "treerpo/train/checkpoint.h"
#include "treerpo/util/checksums.h"
#include "treerpo/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto [state, sums] = treerpo::fuzz::split_at_nul(data, size);
  treerpo::fuzz::write_file("trainer_state.json", state);
  try {
    treerpo::train::read_trainer_state(treerpo::fuzz::scratch().string());
  } catch (const treerpo::Error&) {
  }
  try {
    treerpo::parse_checksums(std::string(sums), "SHA256SUMS");
  } catch (const treerpo::Error&) {
  }
  return 0;
}
