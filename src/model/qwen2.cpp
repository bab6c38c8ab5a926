#include "treerpo/model/qwen2.h"

#include <algorithm>
#include <string>

#include "decoder_layer.h"
#include "treerpo/model/layers.h"
#include "treerpo/util/error.h"

namespace treerpo::model {

const Qwen2Config& Qwen2::config() const {
  return config_;
}

void Qwen2::set_gradient_checkpointing(bool on) {
  gradient_checkpointing_ = on;
}

bool Qwen2::gradient_checkpointing() const {
  return gradient_checkpointing_;
}

torch::Tensor Qwen2::hidden_states(const torch::Tensor& ids, const torch::Tensor& positions,
                                   const torch::Tensor& mask, const KvSource& kv) const {
  const LayerInputs in = layer_inputs(config_, positions, mask, embed_.scalar_type());
  torch::Tensor x = torch::embedding(embed_, ids);
  for (size_t l = 0; l < layers_.size(); ++l) {
    x = decoder_layer(config_, layers_[l], x, in,
                      [&](const torch::Tensor& k, const torch::Tensor& v) { return kv(l, k, v); });
  }
  return x;
}

torch::Tensor Qwen2::logits(const torch::Tensor& hidden) const {
  return torch::linear(rms_norm(hidden, final_norm_, config_.rms_norm_eps), lm_head_)
      .to(torch::kFloat32);
}

torch::Tensor Qwen2::forward(const std::vector<int32_t>& ids) {
  const int64_t len = static_cast<int64_t>(ids.size());
  if (len == 0) return torch::empty({0, config_.vocab_size});
  const auto device = embed_.device();
  torch::Tensor input =
      torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).view({1, len});
  torch::Tensor positions = torch::arange(len, torch::kInt64).view({1, len});
  torch::Tensor causal = torch::ones({len, len}, torch::kBool).tril().view({1, 1, len, len});
  KvSource own = [](size_t, const torch::Tensor& k, const torch::Tensor& v) {
    return std::make_pair(k, v);
  };
  return logits(hidden_states(input.to(device), positions.to(device), causal.to(device), own)[0]);
}

torch::Tensor Qwen2::extend(KvCache& cache, const std::vector<int64_t>& slots,
                            const std::vector<std::vector<int32_t>>& tokens) {
  const std::string where = "Qwen2 prefill/decode";
  if (slots.size() != tokens.size()) {
    throw runtime_failure("got " + std::to_string(slots.size()) + " slots for " +
                              std::to_string(tokens.size()) + " token lists",
                          where);
  }
  if (cache.keys_.size() != layers_.size() ||
      cache.keys_.front().scalar_type() != embed_.scalar_type()) {
    throw runtime_failure("KV cache was made for another model or dtype", where);
  }
  const int64_t batch = static_cast<int64_t>(slots.size());
  if (batch == 0) return torch::empty({0, config_.vocab_size});
  torch::NoGradGuard no_grad;

  int64_t max_new = 0, max_total = 0;
  std::vector<bool> seen(static_cast<size_t>(cache.slots()), false);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t slot = slots[b], past = cache.length(slot);
    const int64_t n = static_cast<int64_t>(tokens[b].size());
    if (seen[static_cast<size_t>(slot)]) {
      throw runtime_failure("slot " + std::to_string(slot) + " appears twice in one batch", where);
    }
    seen[static_cast<size_t>(slot)] = true;
    if (n == 0) throw runtime_failure("empty token list for slot " + std::to_string(slot), where);
    if (past + n > cache.max_tokens()) {
      throw runtime_failure("slot " + std::to_string(slot) + " would hold " +
                                std::to_string(past + n) + " tokens, capacity is " +
                                std::to_string(cache.max_tokens()),
                            where, "make the KV cache longer");
    }
    for (int32_t id : tokens[b]) {
      if (id < 0 || id >= config_.vocab_size) {
        throw runtime_failure("token id " + std::to_string(id) + " outside the vocabulary", where);
      }
    }
    max_new = std::max(max_new, n);
    max_total = std::max(max_total, past + n);
  }

  // Right-padded batch: query (b, t) sits at position past_b + t and sees cache rows j <= past_b +
  // t. Padding rows compute garbage that is neither cached nor returned.
  std::vector<int64_t> ids(batch * max_new, 0), positions(batch * max_new);
  std::vector<int64_t> valid_rows, write_slot, write_pos, last_rows;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t past = cache.length(slots[b]), n = static_cast<int64_t>(tokens[b].size());
    for (int64_t t = 0; t < max_new; ++t) {
      positions[b * max_new + t] = past + t;
      if (t >= n) continue;
      ids[b * max_new + t] = tokens[b][t];
      valid_rows.push_back(b * max_new + t);
      write_slot.push_back(slots[b]);
      write_pos.push_back(past + t);
    }
    last_rows.push_back(b * max_new + n - 1);
  }
  const auto device = embed_.device();
  auto long_tensor = [&](const std::vector<int64_t>& v) {
    return torch::tensor(v, torch::kInt64).to(device);
  };
  torch::Tensor pos = long_tensor(positions).view({batch, max_new});
  torch::Tensor key_pos = torch::arange(max_total, torch::TensorOptions().device(device));
  torch::Tensor mask = key_pos.view({1, 1, 1, max_total}) <= pos.view({batch, 1, max_new, 1});
  torch::Tensor rows = long_tensor(valid_rows), slot_idx = long_tensor(write_slot);
  torch::Tensor pos_idx = long_tensor(write_pos), batch_slots = long_tensor(slots);
  const int64_t kv_heads = config_.num_key_value_heads, head_dim = config_.head_dim();

  KvSource cached = [&](size_t layer, const torch::Tensor& k, const torch::Tensor& v) {
    auto store = [&](torch::Tensor& buffer, const torch::Tensor& fresh) {
      torch::Tensor flat = fresh.transpose(1, 2).reshape({batch * max_new, kv_heads, head_dim});
      buffer.index_put_({slot_idx, pos_idx}, flat.index_select(0, rows));
      return buffer.narrow(1, 0, max_total).index_select(0, batch_slots).transpose(1, 2);
    };
    return std::make_pair(store(cache.keys_[layer], k), store(cache.values_[layer], v));
  };
  torch::Tensor hidden = hidden_states(long_tensor(ids).view({batch, max_new}), pos, mask, cached);
  for (int64_t b = 0; b < batch; ++b) {
    cache.length_[static_cast<size_t>(slots[b])] += static_cast<int64_t>(tokens[b].size());
  }
  return logits(hidden.view({batch * max_new, -1}).index_select(0, long_tensor(last_rows)));
}

torch::Tensor Qwen2::prefill(KvCache& cache, const std::vector<int64_t>& slots,
                             const std::vector<std::vector<int32_t>>& prompts) {
  return extend(cache, slots, prompts);
}

torch::Tensor Qwen2::decode(KvCache& cache, const std::vector<int64_t>& slots,
                            const std::vector<int32_t>& tokens) {
  std::vector<std::vector<int32_t>> single;
  single.reserve(tokens.size());
  for (int32_t t : tokens) single.push_back({t});
  return extend(cache, slots, single);
}

} // namespace treerpo::model
