#pragma once
// Chat prompts in the format the Qwen2.5-Math models were trained on.
#include <string>
#include <string_view>

namespace treerpo::tokenizer {

inline constexpr const char* kQwenMathSystem =
    "Please reason step by step, and put your final answer within \\boxed{}.";

// "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
std::string qwen_math_prompt(std::string_view question, std::string_view system = kQwenMathSystem);

} // namespace treerpo::tokenizer
