#include "treerpo/model/config.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "treerpo/util/error.h"

namespace treerpo::model {
namespace {

std::string at_key(const std::string& path, const std::string& key) {
  return path + ": key \"" + key + "\"";
}

int64_t positive_int(const nlohmann::json& j, const std::string& path, const std::string& key) {
  if (!j.contains(key)) throw bad_input("missing required key", at_key(path, key));
  if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0) {
    throw bad_input("expected a positive integer, got " + j[key].dump(), at_key(path, key));
  }
  return j[key].get<int64_t>();
}

double positive_number(const nlohmann::json& j, const std::string& path, const std::string& key,
                       double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number() || j[key].get<double>() <= 0) {
    throw bad_input("expected a positive number, got " + j[key].dump(), at_key(path, key));
  }
  return j[key].get<double>();
}

// Options transformers' Qwen2 supports but this decoder does not: reject rather than silently
// ignore.
void reject_unsupported(const nlohmann::json& j, const std::string& path) {
  const std::string hint = "this decoder implements plain Qwen2 (Qwen2.5 / Qwen2.5-Math) only";
  if (j.contains("architectures") && j["architectures"].is_array()) {
    for (const auto& a : j["architectures"]) {
      if (a != "Qwen2ForCausalLM") {
        throw bad_input("unsupported architecture " + a.dump(), at_key(path, "architectures"),
                        hint);
      }
    }
  }
  if (j.contains("model_type") && j["model_type"] != "qwen2") {
    throw bad_input("unsupported model_type " + j["model_type"].dump(), at_key(path, "model_type"),
                    hint);
  }
  if (!j.contains("architectures") && !j.contains("model_type")) {
    throw bad_input("neither architectures nor model_type given", path,
                    "a Hugging Face Qwen2 config.json names \"Qwen2ForCausalLM\"");
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    throw bad_input("rope_scaling is not supported", at_key(path, "rope_scaling"), hint);
  }
  // transformers 5 writes RoPE as "rope_parameters": {"rope_type", "rope_theta", ...}.
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    const nlohmann::json& rope = j["rope_parameters"];
    if (!rope.is_object()) {
      throw bad_input("expected an object", at_key(path, "rope_parameters"), hint);
    }
    if (rope.contains("rope_type") && rope["rope_type"] != "default") {
      throw bad_input("rope_type " + rope["rope_type"].dump() + " is not supported",
                      at_key(path, "rope_parameters.rope_type"), hint);
    }
  }
  if (j.contains("use_sliding_window") && !j["use_sliding_window"].is_boolean() &&
      !j["use_sliding_window"].is_null()) {
    throw bad_input("expected true or false", at_key(path, "use_sliding_window"));
  }
  if (j.contains("use_sliding_window") && j["use_sliding_window"] == true) {
    throw bad_input("sliding-window attention is not supported", at_key(path, "use_sliding_window"),
                    hint);
  }
  if (j.contains("hidden_act") && j["hidden_act"] != "silu") {
    throw bad_input("unsupported hidden_act " + j["hidden_act"].dump(), at_key(path, "hidden_act"),
                    hint);
  }
}

} // namespace

Qwen2Config Qwen2Config::from_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw bad_input("cannot open config", path, "point --model at a Hugging Face model folder");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw bad_input(std::string("invalid JSON (") + e.what() + ")", path);
  }
  if (!j.is_object()) throw bad_input("config is not a JSON object", path);
  reject_unsupported(j, path);

  Qwen2Config c;
  c.vocab_size = positive_int(j, path, "vocab_size");
  c.hidden_size = positive_int(j, path, "hidden_size");
  c.intermediate_size = positive_int(j, path, "intermediate_size");
  c.num_hidden_layers = positive_int(j, path, "num_hidden_layers");
  c.num_attention_heads = positive_int(j, path, "num_attention_heads");
  c.num_key_value_heads = j.contains("num_key_value_heads")
                              ? positive_int(j, path, "num_key_value_heads")
                              : c.num_attention_heads;
  if (j.contains("max_position_embeddings")) {
    c.max_position_embeddings = positive_int(j, path, "max_position_embeddings");
  }
  c.rope_theta = positive_number(j, path, "rope_theta", c.rope_theta);
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    c.rope_theta = positive_number(j["rope_parameters"], path + ": rope_parameters", "rope_theta",
                                   c.rope_theta);
  }
  c.rms_norm_eps = positive_number(j, path, "rms_norm_eps", c.rms_norm_eps);
  if (j.contains("tie_word_embeddings")) {
    if (!j["tie_word_embeddings"].is_boolean()) {
      throw bad_input("expected true or false", at_key(path, "tie_word_embeddings"));
    }
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  // transformers >= 4.56 writes "dtype" where older versions wrote "torch_dtype".
  for (const char* key : {"torch_dtype", "dtype"}) {
    if (j.contains(key) && j[key].is_string()) c.torch_dtype = j[key].get<std::string>();
  }

  if (c.hidden_size % c.num_attention_heads != 0 || c.head_dim() % 2 != 0) {
    throw bad_input("hidden_size must split into an even head_dim per attention head",
                    at_key(path, "num_attention_heads"));
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    throw bad_input("num_attention_heads must be a multiple of num_key_value_heads",
                    at_key(path, "num_key_value_heads"));
  }
  if (j.contains("head_dim") && j["head_dim"] != c.head_dim()) {
    throw bad_input("head_dim other than hidden_size / num_attention_heads is not supported",
                    at_key(path, "head_dim"));
  }
  return c;
}

void Qwen2Config::write_json_file(const std::string& path) const {
  nlohmann::json j = {
      {"architectures", {"Qwen2ForCausalLM"}},
      {"model_type", "qwen2"},
      {"hidden_act", "silu"},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"max_position_embeddings", max_position_embeddings},
      {"rope_theta", rope_theta},
      {"rms_norm_eps", rms_norm_eps},
      {"tie_word_embeddings", tie_word_embeddings},
      {"torch_dtype", torch_dtype},
      {"rope_scaling", nullptr},
      {"use_sliding_window", false},
      {"attention_dropout", 0.0},
  };
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw runtime_failure("cannot create file", path, "check the folder is writable");
  out << j.dump(2) << "\n";
  if (!out) throw runtime_failure("write failed (disk full?)", path);
}

Qwen2Config Qwen2Config::builtin(const std::string& name, const std::string& where) {
  Qwen2Config c;
  c.max_position_embeddings = 4096;
  if (name == "qwen2.5-math-1.5b") {
    c.vocab_size = 151936, c.hidden_size = 1536, c.intermediate_size = 8960;
    c.num_hidden_layers = 28, c.num_attention_heads = 12, c.num_key_value_heads = 2;
    c.rope_theta = 10000.0, c.rms_norm_eps = 1e-6;
    c.tie_word_embeddings = true, c.torch_dtype = "bfloat16";
  } else if (name == "tiny") {
    c.vocab_size = 258, c.hidden_size = 64, c.intermediate_size = 128;
    c.num_hidden_layers = 2, c.num_attention_heads = 4, c.num_key_value_heads = 2;
  } else {
    throw bad_input("unknown shape '" + name + "'", where, "use qwen2.5-math-1.5b or tiny");
  }
  return c;
}

} // namespace treerpo::model
