#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "treerpo/tokenizer/chat.h"
#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::tokenizer {
namespace {

using nlohmann::json;

// transformers' apply_chat_template of [system: kQwenMathSystem, user: question] with a generation
// prompt, written by the CTest fixture oracle_fixture_chat (tests/oracles/fixture_chat.py). With
// the shared tokenizer present a missing file fails the test: the fixture is part of every run, so
// absence means the wiring broke.
bool shared_tokenizer_present() {
  return std::ifstream(std::string(TREERPO_SHARED_DIR) + "/tokenizers/qwen/tokenizer.json").good();
}

std::vector<json> chat_oracle() {
  const std::string path = TREERPO_ORACLE_DIR "/chat.jsonl";
  std::ifstream in(path);
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) rows.push_back(json::parse(line));
  }
  if (rows.empty()) {
    ADD_FAILURE() << "no rows in " << path << "; run through ctest (fixture oracle_fixture_chat)";
  }
  return rows;
}

TEST(Chat, QwenMathPromptHasTheTrainedLayout) {
  EXPECT_EQ(
      qwen_math_prompt("What is 2+2?"),
      "<|im_start|>system\nPlease reason step by step, and put your final answer within "
      "\\boxed{}.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(
      qwen_math_prompt("q", "S"),
      "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n");
}

TEST(Chat, QwenPromptTokenizesWithSpecialTokens) {
  const std::string dir = std::string(TREERPO_SHARED_DIR) + "/tokenizers/qwen";
  if (!std::ifstream(dir + "/tokenizer.json")) GTEST_SKIP() << "no " << dir;
  const auto tok = Tokenizer::load(dir);
  const auto ids = tok->encode(qwen_math_prompt("What is 2+2?"));
  EXPECT_EQ(ids.front(), 151644);                           // <|im_start|>
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 151645), 2); // <|im_end|> after system and user
  EXPECT_EQ(ids.back(), 198);                               // "\n" after "assistant"
}

TEST(Chat, QwenMathPromptEqualsTransformersQwen25Template) {
  if (!shared_tokenizer_present()) GTEST_SKIP() << "no " TREERPO_SHARED_DIR "/tokenizers/qwen";
  for (const json& row : chat_oracle()) {
    EXPECT_EQ(qwen_math_prompt(row["question"].get<std::string>()),
              row["qwen2_5"].get<std::string>())
        << "question " << row["question"].dump();
  }
}

// Qwen3's own template renders a system + user conversation as Qwen2.5 does, until thinking is
// switched off: enable_thinking=False pre-fills an empty think block after the generation prompt,
// which qwen_math_prompt never writes (Qwen2.5-Math was not trained with think blocks). (Without a
// system message the two differ too: Qwen3 adds no default one; qwen_math_prompt always has one.)
TEST(Chat, Qwen3TemplateDiffersOnlyByAnEmptyThinkBlockWhenThinkingIsOff) {
  if (!shared_tokenizer_present()) GTEST_SKIP() << "no " TREERPO_SHARED_DIR "/tokenizers/qwen";
  for (const json& row : chat_oracle()) {
    const std::string ours = qwen_math_prompt(row["question"].get<std::string>());
    EXPECT_EQ(row["qwen3"].get<std::string>(), ours) << "question " << row["question"].dump();
    EXPECT_EQ(row["qwen3_no_thinking"].get<std::string>(), ours + "<think>\n\n</think>\n\n")
        << "question " << row["question"].dump();
  }
}

} // namespace
} // namespace treerpo::tokenizer
