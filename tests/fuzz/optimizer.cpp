// libFuzzer target: optimizer.state as resume reads it (AdamW::load) for a 2-parameter bf16 model,
// once as train.optimizer adamw (float32 moments and a Kahan buffer) and once as adamw-bf16. What
// is fuzzed: the safetensors container (header, offsets, metadata) and our validation (optimizer
// and step count in the metadata, every tensor present with its parameter's shape and dtype,
// nothing else). optimizer.pt, the LibTorch archive earlier versions wrote, is read by LibTorch's
// unpickler and not fuzzed here (adamw_archive.cpp says why it is safe to keep). Seeds are real
// state files (`TREERPO_FUZZ_WRITE_SEED=PREFIX fuzz_optimizer -runs=0` writes PREFIX-adamw and
// PREFIX-adamw-bf16 after a step), so mutations reach our checks.
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
  return {torch::zeros({2, 3}, torch::kBFloat16), torch::zeros({4}, torch::kBFloat16)};
}

treerpo::train::AdamWOptions options(bool lean) {
  treerpo::train::AdamWOptions o;
  o.bf16_state = lean;
  return o;
}

// Writes a real state after one step to `path`.
void write_state(const std::string& path, bool lean) {
  std::vector<torch::Tensor> params = parameters();
  for (auto& p : params) p.mutable_grad() = torch::ones_like(p);
  treerpo::train::AdamW optimizer(params, options(lean));
  optimizer.step(0.1);
  optimizer.save(path);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (const char* prefix = std::getenv("TREERPO_FUZZ_WRITE_SEED")) {
    write_state(std::string(prefix) + "-adamw", false);
    write_state(std::string(prefix) + "-adamw-bf16", true);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::vector<torch::Tensor> params = parameters();
  const std::string path = treerpo::fuzz::write_file(
      "optimizer.state", std::string_view(reinterpret_cast<const char*>(data), size));
  for (bool lean : {false, true}) {
    treerpo::train::AdamW optimizer(params, options(lean));
    try {
      optimizer.load(path);
    } catch (const treerpo::Error&) {
    }
  }
  return 0;
}
