#pragma once
// The shape every suite's tiny random Qwen2 shares: two layers and grouped-query attention (4 query
// heads over 2 key/value heads), small enough to run every path in milliseconds on a CPU.
#include <cstdint>

#include "treerpo/model/config.h"

namespace treerpo::testing {

inline model::Qwen2Config tiny_qwen2(int64_t vocab, int64_t hidden, int64_t intermediate) {
  model::Qwen2Config c;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  return c;
}

} // namespace treerpo::testing
