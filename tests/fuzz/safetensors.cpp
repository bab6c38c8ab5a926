// libFuzzer target: a safetensors file (8-byte header length, JSON header, data section) through
// SafetensorsFile::open and a read of every tensor it accepts. Beyond "no crash": an accepted
// tensor's bytes lie inside the file, so reading it never allocates more than the file holds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "files.h"
#include "treerpo/model/safetensors.h"
#include "treerpo/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = treerpo::fuzz::write_file(
      "model.safetensors", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const auto file = treerpo::model::SafetensorsFile::open(path);
    for (const std::string& name : file.names()) {
      file.shape(name);
      const torch::Tensor t = file.tensor(name);
      if (t.nbytes() > size) std::abort();
    }
  } catch (const treerpo::Error&) {
  }
  return 0;
}
