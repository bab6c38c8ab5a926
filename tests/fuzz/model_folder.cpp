// libFuzzer target: a model folder's config.json and model.safetensors.index.json through
// Qwen2::load. The input is split at its first NUL into config.json and the index (no NUL: no
// index, and the folder's single model.safetensors is read). The folder holds the weights of a
// 2-layer model with hidden size 8 (written once), so a config or index that fits them loads.
#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "files.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/util/error.h"

namespace {

treerpo::model::Qwen2Config tiny() {
  treerpo::model::Qwen2Config c;
  c.vocab_size = 16;
  c.hidden_size = 8;
  c.intermediate_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.tie_word_embeddings = true;
  return c;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fs = std::filesystem;
  const fs::path dir = treerpo::fuzz::scratch() / "model";
  if (!fs::exists(dir / "model.safetensors")) {
    treerpo::model::Qwen2::random(tiny(), 1, torch::kFloat32, torch::kCPU).save(dir.string());
    fs::remove(dir / "generation_config.json");
  }
  auto [config, index] = treerpo::fuzz::split_at_nul(data, size);
  treerpo::fuzz::write_file("model/config.json", config);
  fs::remove(dir / "model.safetensors.index.json");
  if (size > config.size()) treerpo::fuzz::write_file("model/model.safetensors.index.json", index);
  try {
    treerpo::model::Qwen2::load(dir.string(), torch::kFloat32, torch::kCPU);
  } catch (const treerpo::Error&) {
  }
  return 0;
}
