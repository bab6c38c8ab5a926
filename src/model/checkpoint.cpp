// Qwen2 weights in and out of Hugging Face model folders, and random weights for tests.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include "treerpo/model/qwen2.h"
#include "treerpo/model/safetensors.h"
#include "treerpo/util/checksums.h"
#include "treerpo/util/error.h"

namespace fs = std::filesystem;

namespace treerpo::model {
namespace {

// Files of a model folder that travel with the weights unchanged.
constexpr const char* kCompanionFiles[] = {"generation_config.json",
                                           "tokenizer.json",
                                           "tokenizer_config.json",
                                           "vocab.json",
                                           "merges.txt",
                                           "special_tokens_map.json",
                                           "added_tokens.json",
                                           "chat_template.jinja"};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string dtype_name(torch::Dtype dtype) {
  switch (dtype) {
  case torch::kBFloat16:
    return "bfloat16";
  case torch::kFloat16:
    return "float16";
  default:
    return "float32";
  }
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw bad_input(std::string("invalid JSON (") + e.what() + ")", path.string());
  }
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::ofstream out(path, std::ios::trunc);
  out << j.dump(2) << "\n";
  if (!out)
    throw runtime_failure("cannot write file", path.string(), "check the folder is writable");
}

// Tensor name -> the safetensors file holding it, from the index or the single-file layout.
std::map<std::string, fs::path> weight_files(const fs::path& dir, fs::path& listing) {
  std::map<std::string, fs::path> files;
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    listing = index;
    nlohmann::json j = read_json(index);
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
      throw bad_input("missing \"weight_map\" object", index.string(),
                      "re-download the checkpoint");
    }
    for (const auto& [name, file] : j["weight_map"].items()) {
      const std::string value = file.is_string() ? file.get<std::string>() : "";
      // transformers writes plain names of files beside the index; nothing else is read.
      if (value.empty() || value.find('/') != std::string::npos || value == "." || value == "..")
        throw bad_input("weight_map entry is not a file name of this folder",
                        index.string() + ": " + name);
      files[name] = dir / value;
    }
    return files;
  }
  listing = dir / "model.safetensors";
  if (!fs::exists(listing)) {
    throw bad_input("no model.safetensors or model.safetensors.index.json", dir.string(),
                    "point at a Hugging Face model folder");
  }
  for (const auto& name : SafetensorsFile::open(listing.string()).names()) files[name] = listing;
  return files;
}

} // namespace

Qwen2::Qwen2(const Qwen2Config& cfg)
    : config_(cfg), layers_(static_cast<size_t>(cfg.num_hidden_layers)) {}

std::vector<Qwen2::WeightRef> Qwen2::weight_refs() {
  const Qwen2Config& c = config_;
  const int64_t hidden = c.hidden_size, kv = c.num_key_value_heads * c.head_dim();
  const int64_t inter = c.intermediate_size;
  std::vector<WeightRef> refs{{"model.embed_tokens.weight", &embed_, {c.vocab_size, hidden}}};
  for (size_t l = 0; l < layers_.size(); ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Layer& L = layers_[l];
    refs.push_back({p + "self_attn.q_proj.weight", &L.q_w, {hidden, hidden}});
    refs.push_back({p + "self_attn.q_proj.bias", &L.q_b, {hidden}});
    refs.push_back({p + "self_attn.k_proj.weight", &L.k_w, {kv, hidden}});
    refs.push_back({p + "self_attn.k_proj.bias", &L.k_b, {kv}});
    refs.push_back({p + "self_attn.v_proj.weight", &L.v_w, {kv, hidden}});
    refs.push_back({p + "self_attn.v_proj.bias", &L.v_b, {kv}});
    refs.push_back({p + "self_attn.o_proj.weight", &L.o_w, {hidden, hidden}});
    refs.push_back({p + "mlp.gate_proj.weight", &L.gate_w, {inter, hidden}});
    refs.push_back({p + "mlp.up_proj.weight", &L.up_w, {inter, hidden}});
    refs.push_back({p + "mlp.down_proj.weight", &L.down_w, {hidden, inter}});
    refs.push_back({p + "input_layernorm.weight", &L.input_norm, {hidden}});
    refs.push_back({p + "post_attention_layernorm.weight", &L.post_norm, {hidden}});
  }
  refs.push_back({"model.norm.weight", &final_norm_, {hidden}});
  if (!c.tie_word_embeddings) refs.push_back({"lm_head.weight", &lm_head_, {c.vocab_size, hidden}});
  return refs;
}

std::vector<std::pair<std::string, torch::Tensor>> Qwen2::named_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const WeightRef& w : const_cast<Qwen2*>(this)->weight_refs())
    out.emplace_back(w.name, *w.tensor);
  return out;
}

std::vector<torch::Tensor> Qwen2::parameters() const {
  std::vector<torch::Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

Qwen2 Qwen2::load(const std::string& dir, torch::Dtype dtype, torch::Device device) {
  require_intact(dir); // a checkpoint we saved carries checksums; a plain HF folder passes
  const Qwen2Config config = Qwen2Config::from_json_file((fs::path(dir) / "config.json").string());
  fs::path listing;
  const auto files = weight_files(dir, listing);
  // Checked before the layer stack is built: a config.json claiming 10^12 layers must not
  // allocate 10^12 layers first. Each layer has 12 tensors; embeddings and the final norm add 2.
  const auto needed = static_cast<uint64_t>(config.num_hidden_layers);
  if (needed > (files.size() + 1) / 12) {
    throw bad_input("config.json has " + std::to_string(config.num_hidden_layers) +
                        " layers but the weights hold " + std::to_string(files.size()) + " tensors",
                    listing.string(), "does config.json belong to these weights?");
  }
  Qwen2 model(config);
  model.source_dir_ = dir;
  std::map<fs::path, SafetensorsFile> opened;
  for (const WeightRef& w : model.weight_refs()) {
    auto it = files.find(w.name);
    if (it == files.end()) {
      throw bad_input(
          "missing tensor", listing.string() + ": tensor " + w.name,
          w.name == "lm_head.weight"
              ? "the config says tie_word_embeddings: false; is the checkpoint complete?"
              : "is the checkpoint complete?");
    }
    auto file = opened.find(it->second);
    if (file == opened.end()) {
      file = opened.emplace(it->second, SafetensorsFile::open(it->second.string())).first;
    }
    const SafetensorsFile& st = file->second;
    if (!st.contains(w.name)) {
      throw bad_input("missing tensor (listed in the index)", st.path() + ": tensor " + w.name);
    }
    if (st.shape(w.name) != w.shape) {
      throw bad_input("shape " + shape_text(st.shape(w.name)) + " but config.json implies " +
                          shape_text(w.shape),
                      st.path() + ": tensor " + w.name,
                      "does config.json belong to these weights?");
    }
    *w.tensor = st.tensor(w.name).to(device, dtype).set_requires_grad(true);
  }
  if (model.config_.tie_word_embeddings) model.lm_head_ = model.embed_;
  return model;
}

Qwen2 Qwen2::random(const Qwen2Config& cfg, uint64_t seed, torch::Dtype dtype,
                    torch::Device device) {
  Qwen2 model(cfg);
  // Drawn in float32 on the CPU so a seed gives the same weights on every device and dtype.
  at::Generator gen = at::detail::createCPUGenerator(seed);
  for (const WeightRef& w : model.weight_refs()) {
    torch::Tensor noise = torch::randn(w.shape, gen, torch::kFloat32);
    const bool norm = w.name.find("norm.weight") != std::string::npos;
    const bool bias = w.name.find(".bias") != std::string::npos;
    // Scales that keep activations and logits O(1): log-probs neither uniform nor saturated, so
    // tests discriminate.
    torch::Tensor value = norm   ? 1.0 + 0.1 * noise
                          : bias ? 0.1 * noise
                                 : noise / std::sqrt(static_cast<double>(w.shape[1]));
    *w.tensor = value.to(device, dtype).set_requires_grad(true);
  }
  if (cfg.tie_word_embeddings) model.lm_head_ = model.embed_;
  return model;
}

void Qwen2::save(const std::string& dir, int64_t max_shard_bytes) const {
  const fs::path out(dir);
  fs::create_directories(out);
  fs::remove(out / kChecksumsFile); // checksums of the weights being replaced no longer hold
  const auto tensors = named_parameters();
  int64_t total = 0;
  for (const auto& [name, t] : tensors) total += static_cast<int64_t>(t.nbytes());

  if (total <= max_shard_bytes) {
    write_safetensors((out / "model.safetensors").string(), tensors);
  } else {
    // transformers' layout: greedy shards in parameter order, model-0000i-of-0000n.safetensors.
    std::vector<std::vector<std::pair<std::string, torch::Tensor>>> shards(1);
    int64_t filled = 0;
    for (const auto& entry : tensors) {
      const auto bytes = static_cast<int64_t>(entry.second.nbytes());
      if (!shards.back().empty() && filled + bytes > max_shard_bytes) {
        shards.emplace_back();
        filled = 0;
      }
      shards.back().push_back(entry);
      filled += bytes;
    }
    nlohmann::json weight_map = nlohmann::json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
      char name[64];
      std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
      write_safetensors((out / name).string(), shards[i]);
      for (const auto& entry : shards[i]) weight_map[entry.first] = name;
    }
    write_json(out / "model.safetensors.index.json",
               {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
  }

  // Keep the source config's other keys (bos/eos ids, ...) under the fields this model owns.
  const fs::path source_config = fs::path(source_dir_) / "config.json";
  const bool has_source = !source_dir_.empty() && fs::exists(source_config);
  const nlohmann::json source_json =
      has_source ? read_json(source_config) : nlohmann::json::object();
  Qwen2Config cfg = config_;
  cfg.torch_dtype = dtype_name(embed_.scalar_type());
  cfg.write_json_file((out / "config.json").string());
  if (has_source) {
    nlohmann::json merged = source_json;
    merged.update(read_json(out / "config.json"));
    // transformers >= 4.56 names the dtype "dtype"; keep it in step with torch_dtype.
    if (merged.contains("dtype")) merged["dtype"] = cfg.torch_dtype;
    write_json(out / "config.json", merged);
    if (!fs::equivalent(source_dir_, out)) {
      for (const char* file : kCompanionFiles) {
        const fs::path from = fs::path(source_dir_) / file;
        if (fs::exists(from)) fs::copy_file(from, out / file, fs::copy_options::overwrite_existing);
      }
    }
  }
  if (!fs::exists(out / "generation_config.json")) {
    write_json(out / "generation_config.json", {{"_from_model_config", true}});
  }
}

} // namespace treerpo::model
