#include <string>

#include "treerpo/model/qwen2.h"
#include "treerpo/util/error.h"

namespace treerpo::model {

KvCache::KvCache(const Qwen2Config& cfg, int64_t slots, int64_t max_tokens, torch::Dtype dtype,
                 torch::Device device)
    : length_(static_cast<size_t>(std::max<int64_t>(slots, 0)), 0) {
  if (slots <= 0 || max_tokens <= 0) {
    throw runtime_failure("KV cache needs at least one slot and one token",
                          "KvCache(slots=" + std::to_string(slots) +
                              ", max_tokens=" + std::to_string(max_tokens) + ")");
  }
  auto options = torch::TensorOptions().dtype(dtype).device(device);
  // Zeros, not empty: masked-out rows still enter the attention matmul, and 0 * NaN would be NaN.
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    keys_.push_back(
        torch::zeros({slots, max_tokens, cfg.num_key_value_heads, cfg.head_dim()}, options));
    values_.push_back(torch::zeros_like(keys_.back()));
  }
}

int64_t KvCache::slots() const {
  return static_cast<int64_t>(length_.size());
}

int64_t KvCache::max_tokens() const {
  return keys_.empty() ? 0 : keys_.front().size(1);
}

void KvCache::check_slot(int64_t slot) const {
  if (slot < 0 || slot >= slots()) {
    throw runtime_failure("KV cache slot " + std::to_string(slot) + " out of range",
                          "KvCache with " + std::to_string(slots()) + " slots");
  }
}

int64_t KvCache::length(int64_t slot) const {
  check_slot(slot);
  return length_[static_cast<size_t>(slot)];
}

void KvCache::fork(int64_t src, int64_t dst) {
  check_slot(src);
  check_slot(dst);
  if (src == dst) return;
  torch::NoGradGuard no_grad;
  const int64_t n = length_[static_cast<size_t>(src)];
  for (size_t l = 0; l < keys_.size(); ++l) {
    keys_[l][dst].narrow(0, 0, n).copy_(keys_[l][src].narrow(0, 0, n));
    values_[l][dst].narrow(0, 0, n).copy_(values_[l][src].narrow(0, 0, n));
  }
  length_[static_cast<size_t>(dst)] = n;
}

void KvCache::release(int64_t slot) {
  check_slot(slot);
  length_[static_cast<size_t>(slot)] = 0;
}

} // namespace treerpo::model
