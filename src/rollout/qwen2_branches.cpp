#include "treerpo/rollout/qwen2_branches.h"

#include <c10/core/GradMode.h>

namespace treerpo::rollout {

namespace {

class TokenizerStream : public TextStream {
public:
  explicit TokenizerStream(const tokenizer::Tokenizer& tok) : decoder_(tok) {}
  std::string push(int32_t id) override { return decoder_.push(id); }
  std::unique_ptr<TextStream> clone() const override {
    return std::make_unique<TokenizerStream>(*this);
  }

private:
  tokenizer::StreamDecoder decoder_;
};

} // namespace

Qwen2Branches::Qwen2Branches(model::Qwen2& model, int64_t slots, int64_t max_tokens,
                             torch::Dtype dtype, torch::Device device)
    : model_(model), cache_(model.config(), slots, max_tokens, dtype, device), device_(device) {}

at::Tensor Qwen2Branches::prefill(const std::vector<int64_t>& slots,
                                  const std::vector<std::vector<int32_t>>& prompts) {
  c10::NoGradGuard no_grad;
  return model_.prefill(cache_, slots, prompts);
}

at::Tensor Qwen2Branches::decode(const std::vector<int64_t>& slots,
                                 const std::vector<int32_t>& tokens) {
  c10::NoGradGuard no_grad;
  return model_.decode(cache_, slots, tokens);
}

TextStreamFactory tokenizer_streams(const tokenizer::Tokenizer& tok) {
  return [&tok] { return std::make_unique<TokenizerStream>(tok); };
}

} // namespace treerpo::rollout
