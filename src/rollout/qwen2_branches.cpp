#include "treerpo/rollout/qwen2_branches.h"

#include <c10/core/GradMode.h>

#include <fmt/format.h>

#include "treerpo/util/device_memory.h"
#include "treerpo/util/error.h"

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

int64_t kv_pool_tokens(const RolloutConfig& config, int64_t longest_prompt, int64_t bytes_per_token,
                       int64_t free_bytes) {
  if (config.kv_cache_tokens > 0) return config.kv_cache_tokens;
  if (config.kv_cache_memory_fraction <= 0)
    return config.max_live_branches * (longest_prompt + config.max_answer_tokens + 1);
  if (bytes_per_token <= 0) {
    throw runtime_failure("a KV pool sized by memory needs the bytes of a token",
                          "kv_pool_tokens(bytes_per_token=" + std::to_string(bytes_per_token) +
                              ")");
  }
  const auto budget =
      static_cast<int64_t>(config.kv_cache_memory_fraction * static_cast<double>(free_bytes));
  const int64_t block = config.kv_block_tokens;
  const int64_t tokens = budget / (bytes_per_token * block) * block;
  const int64_t least = config.max_answer_tokens + block;
  if (tokens < least) {
    constexpr double kGiB = double(int64_t{1} << 30);
    throw runtime_failure(
        fmt::format("the KV pool would hold {} tokens ({} of {:.2f} GiB free, {} bytes a token), "
                    "fewer than one answer and a block ({})",
                    tokens, config.kv_cache_memory_fraction, static_cast<double>(free_bytes) / kGiB,
                    bytes_per_token, least),
        "rollout.kv_cache_memory_fraction",
        "raise it, free memory on the device, or set rollout.kv_cache_tokens");
  }
  return tokens;
}

int64_t kv_bytes_per_token(const model::Qwen2Config& shape, torch::Dtype dtype) {
  return 2 * shape.num_hidden_layers * shape.num_key_value_heads * shape.head_dim() *
         static_cast<int64_t>(c10::elementSize(dtype));
}

int64_t kv_pool_tokens_on(const RolloutConfig& config, int64_t longest_prompt,
                          const model::Qwen2Config& shape, torch::Dtype dtype, torch::Device device,
                          double cap_gib) {
  if (config.kv_cache_tokens > 0 || config.kv_cache_memory_fraction <= 0)
    return kv_pool_tokens(config, longest_prompt);
  return kv_pool_tokens(config, longest_prompt, kv_bytes_per_token(shape, dtype),
                        free_memory_bytes(device, cap_gib));
}

Qwen2Branches::Qwen2Branches(model::Qwen2& model, int64_t max_live, int64_t kv_tokens,
                             int64_t block_tokens, torch::Dtype dtype, torch::Device device,
                             model::DecodeAttention attention, DecodeShapes shapes,
                             int64_t max_length)
    : model_(model), max_live_(max_live),
      cache_(model.config(),
             (kv_tokens + block_tokens - 1) / std::max<int64_t>(1, block_tokens) +
                 (shapes == DecodeShapes::Dynamic ? 0 : 1),
             block_tokens, dtype, device),
      device_(device), attention_(attention) {
  if (max_live < 1) {
    throw runtime_failure("a rollout needs at least one live branch",
                          "Qwen2Branches(max_live=" + std::to_string(max_live) + ")");
  }
  if (shapes == DecodeShapes::Dynamic) return;
  if (attention != model::DecodeAttention::PagedKernel) {
    throw runtime_failure("fixed-shape decode steps run the paged kernel", "Qwen2Branches",
                          "set rollout.decode_attention: paged_kernel");
  }
  fixed_ = std::make_unique<model::DecodeGraphs>(model, cache_, max_live, max_length,
                                                 shapes == DecodeShapes::CudaGraphs);
}

Qwen2Branches::~Qwen2Branches() = default;

int64_t Qwen2Branches::graphs() const {
  return fixed_ ? fixed_->graphs() : 0;
}

DecodeShapes decode_shapes_of(const RolloutConfig& config) {
  return config.cuda_graphs ? DecodeShapes::CudaGraphs : DecodeShapes::Dynamic;
}

int64_t Qwen2Branches::blocks_for(int64_t tokens) const {
  return (tokens + cache_.block_tokens() - 1) / cache_.block_tokens();
}

at::Tensor Qwen2Branches::prefill(const std::vector<int64_t>& seqs,
                                  const std::vector<std::vector<int32_t>>& prompts) {
  c10::NoGradGuard no_grad;
  return model_.prefill(cache_, seqs, prompts);
}

at::Tensor Qwen2Branches::decode(const std::vector<int64_t>& seqs,
                                 const std::vector<int32_t>& tokens) {
  c10::NoGradGuard no_grad;
  if (fixed_) return fixed_->decode(seqs, tokens);
  return model_.decode(cache_, seqs, tokens, attention_);
}

Qwen2DenseBranches::Qwen2DenseBranches(model::Qwen2& model, int64_t max_live, int64_t slots,
                                       int64_t max_tokens, torch::Dtype dtype, torch::Device device)
    : model_(model), max_live_(max_live), cache_(model.config(), slots, max_tokens, dtype, device),
      device_(device) {
  for (int64_t s = 0; s < slots; ++s) free_.insert(s);
}

int64_t Qwen2DenseBranches::slot_of(int64_t seq) {
  auto it = slot_.find(seq);
  if (it != slot_.end()) return it->second;
  if (free_.empty()) {
    throw runtime_failure("rollout stalled: every KV slot is held by branches waiting to split",
                          "dense KV cache of " + std::to_string(cache_.slots()) + " slots",
                          "raise --dense-slots");
  }
  const int64_t slot = *free_.begin();
  free_.erase(free_.begin());
  slot_[seq] = slot;
  return slot;
}

at::Tensor Qwen2DenseBranches::prefill(const std::vector<int64_t>& seqs,
                                       const std::vector<std::vector<int32_t>>& prompts) {
  c10::NoGradGuard no_grad;
  std::vector<int64_t> slots;
  for (int64_t s : seqs) slots.push_back(slot_of(s));
  return model_.prefill(cache_, slots, prompts);
}

at::Tensor Qwen2DenseBranches::decode(const std::vector<int64_t>& seqs,
                                      const std::vector<int32_t>& tokens) {
  c10::NoGradGuard no_grad;
  std::vector<int64_t> slots;
  for (int64_t s : seqs) slots.push_back(slot_of(s));
  return model_.decode(cache_, slots, tokens);
}

void Qwen2DenseBranches::fork(int64_t src, int64_t dst) {
  const int64_t from = slot_of(src);
  cache_.fork(from, slot_of(dst));
}

void Qwen2DenseBranches::release(int64_t seq) {
  auto it = slot_.find(seq);
  if (it == slot_.end()) return;
  cache_.release(it->second);
  free_.insert(it->second);
  slot_.erase(it);
}

int64_t Qwen2DenseBranches::kv_tokens_held() const {
  int64_t held = 0;
  for (const auto& [seq, slot] : slot_) held += cache_.length(slot);
  return held;
}

TextStreamFactory tokenizer_streams(const tokenizer::Tokenizer& tok) {
  return [&tok] { return std::make_unique<TokenizerStream>(tok); };
}

} // namespace treerpo::rollout
