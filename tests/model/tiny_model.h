#pragma once
// A tiny Qwen2 for tests: small enough to run every path in milliseconds, with GQA (4 heads, 2 kv).
#include <filesystem>
#include <string>

#include "../common/temp_dir.h"
#include "../common/tiny_qwen2.h"
#include "treerpo/model/config.h"

namespace treerpo::model::testing {

inline Qwen2Config tiny_config(bool tied) {
  Qwen2Config c = treerpo::testing::tiny_qwen2(300, 64, 96);
  c.max_position_embeddings = 512;
  c.rope_theta = 10000.0;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = tied;
  return c;
}

using treerpo::testing::TempDir;

} // namespace treerpo::model::testing
