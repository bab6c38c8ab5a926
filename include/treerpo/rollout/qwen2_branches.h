#pragma once
// The production BranchModel: a Qwen2 decoder over its slot KV cache, and the tokenizer's streaming
// decoder as the branches' TextStream.
#include <memory>

#include "treerpo/model/qwen2.h"
#include "treerpo/rollout/engine.h"
#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::rollout {

class Qwen2Branches : public BranchModel {
public:
  // `max_tokens`: the longest context a branch reaches (prompt + rollout.max_answer_tokens).
  Qwen2Branches(model::Qwen2& model, int64_t slots, int64_t max_tokens, torch::Dtype dtype,
                torch::Device device);
  int64_t slots() const override { return cache_.slots(); }
  int64_t vocab_size() const override { return model_.config().vocab_size; }
  at::Device device() const override { return device_; }
  at::Tensor prefill(const std::vector<int64_t>& slots,
                     const std::vector<std::vector<int32_t>>& prompts) override;
  at::Tensor decode(const std::vector<int64_t>& slots, const std::vector<int32_t>& tokens) override;
  void fork(int64_t src, int64_t dst) override { cache_.fork(src, dst); }
  void release(int64_t slot) override { cache_.release(slot); }

private:
  model::Qwen2& model_;
  model::KvCache cache_;
  torch::Device device_;
};

// Streams a branch's text with the tokenizer (special tokens kept, as the checker sees them).
TextStreamFactory tokenizer_streams(const tokenizer::Tokenizer& tok);

} // namespace treerpo::rollout
