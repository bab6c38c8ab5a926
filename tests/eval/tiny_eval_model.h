#pragma once
// A tiny random Qwen2 model folder with a real byte-level tokenizer, and four GSM8K test problems:
// enough to drive evaluation end to end on CPU in well under a second per run.
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include "../common/temp_dir.h"
#include "../common/tiny_qwen2.h"
#include "treerpo/eval/dataset.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/tokenizer/byte_level_writer.h"

namespace treerpo::eval::testing {

using treerpo::testing::TempDir;

// Byte tokens 0..255, then <|im_start|> 256, <|im_end|> 257, <|endoftext|> 258; the model's
// vocabulary is exactly those 259 ids, so every sampled id decodes to text.
inline void write_tiny_model(const std::string& dir) {
  tokenizer::write_byte_level_tokenizer(dir, {}, {"<|im_start|>", "<|im_end|>", "<|endoftext|>"});
  model::Qwen2Config c = treerpo::testing::tiny_qwen2(259, 32, 64);
  c.max_position_embeddings = 1024;
  model::Qwen2::random(c, 3, torch::kFloat32, torch::kCPU).save(dir);
}

// The first four problems of GSM8K test.jsonl (gold answers shortened to their final line).
inline std::vector<Problem> gsm8k_fixture() {
  return {
      {"Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and "
       "bakes muffins for her friends every day with four. She sells the remainder at the "
       "farmers' market daily for $2 per fresh duck egg. How much in dollars does she make every "
       "day at the farmers' market?",
       "#### 18", 1},
      {"A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in "
       "total does it take?",
       "#### 3", 2},
      {"Josh decides to try flipping a house.  He buys a house for $80,000 and then puts in "
       "$50,000 in repairs.  This increased the value of the house by 150%.  How much profit did "
       "he make?",
       "#### 70000", 3},
      {"James decides to run 3 sprints 3 times a week.  He runs 60 meters each sprint.  How many "
       "total meters does he run a week?",
       "#### 540", 4},
  };
}

} // namespace treerpo::eval::testing
