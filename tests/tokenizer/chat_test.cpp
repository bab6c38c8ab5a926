#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>

#include "treerpo/tokenizer/chat.h"
#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::tokenizer {
namespace {

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

} // namespace
} // namespace treerpo::tokenizer
