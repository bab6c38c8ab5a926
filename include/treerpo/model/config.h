#pragma once
// Hugging Face `config.json` of a Qwen2ForCausalLM model: the fields the decoder needs. Loading
// rejects other architectures and options the decoder does not implement (rope_scaling, sliding
// window, ...).
#include <cstdint>
#include <string>

namespace treerpo::model {

struct Qwen2Config {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t max_position_embeddings = 32768;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  std::string torch_dtype = "float32";

  int64_t head_dim() const {
    return num_attention_heads > 0 ? hidden_size / num_attention_heads : 0;
  }

  // Throws treerpo::bad_input naming the file and the offending key.
  static Qwen2Config from_json_file(const std::string& path);
  // A built-in shape, for what runs without a model folder (`plan --shape`, `bench rollout
  // --shape`): "qwen2.5-math-1.5b" (Qwen/Qwen2.5-Math-1.5B's config.json) or "tiny" (2 layers of
  // 64, a 258-token vocabulary). Another name is bad_input at `where`.
  static Qwen2Config builtin(const std::string& name, const std::string& where);
  // Writes a config.json transformers loads as Qwen2ForCausalLM.
  void write_json_file(const std::string& path) const;
};

} // namespace treerpo::model
