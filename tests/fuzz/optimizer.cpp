// libFuzzer target: optimizer.pt as resume reads it (AdamW::load) for a 2-parameter model. What is
// fuzzed: our reading and validation (keys present, shapes and dtypes equal to the parameters',
// the step count a non-negative integer). The container itself (a zip of pickles) is LibTorch's
// own reader, not instrumented here; our side guards it: resume checks the checkpoint's SHA256SUMS
// before optimizer.pt is opened, so only a file whose checksum matches reaches that reader.
// Seeds are real optimizer.pt files (`TREERPO_FUZZ_WRITE_SEED=FILE fuzz_optimizer -runs=0` writes
// one after a step), so mutations reach our checks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <torch/torch.h>

#include "files.h"
#include "treerpo/train/adamw.h"
#include "treerpo/util/error.h"

namespace {

std::vector<torch::Tensor> parameters() {
  return {torch::zeros({2, 3}), torch::zeros({4})};
}

// Writes a real state after one step to `path`.
void write_state(const std::string& path) {
  std::vector<torch::Tensor> params = parameters();
  for (auto& p : params) p.mutable_grad() = torch::ones_like(p);
  treerpo::train::AdamW optimizer(params, treerpo::train::AdamWOptions{});
  optimizer.step(0.1);
  optimizer.save(path);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (const char* seed = std::getenv("TREERPO_FUZZ_WRITE_SEED")) write_state(seed);
  // LibTorch compiles its TorchScript builtins on the first archive it reads (seconds under
  // ASan): done here once, so -timeout measures our per-input work only.
  const std::string warm = (treerpo::fuzz::scratch() / "warm.pt").string();
  write_state(warm);
  std::vector<torch::Tensor> params = parameters();
  treerpo::train::AdamW(params, treerpo::train::AdamWOptions{}).load(warm);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::vector<torch::Tensor> params = parameters();
  treerpo::train::AdamW optimizer(params, treerpo::train::AdamWOptions{});
  const std::string path = treerpo::fuzz::write_file(
      "optimizer.pt", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    optimizer.load(path);
  } catch (const treerpo::Error&) {
  }
  return 0;
}
