#include "treerpo/tokenizer/chat.h"

namespace treerpo::tokenizer {

std::string qwen_math_prompt(std::string_view question, std::string_view system) {
  std::string out;
  out.reserve(question.size() + system.size() + 96);
  out += "<|im_start|>system\n";
  out += system;
  out += "<|im_end|>\n<|im_start|>user\n";
  out += question;
  out += "<|im_end|>\n<|im_start|>assistant\n";
  return out;
}

} // namespace treerpo::tokenizer
