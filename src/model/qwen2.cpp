#include "treerpo/model/qwen2.h"

#include <algorithm>
#include <set>
#include <string>

#include "decoder_layer.h"
#include "treerpo/model/layers.h"
#include "treerpo/util/error.h"
#include "treerpo/util/host_transfer.h"

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

torch::Tensor Qwen2::hidden_states(const torch::Tensor& ids, const torch::Tensor& positions,
                                   const LayerAttention& attend) const {
  const LayerInputs in = layer_inputs(config_, positions, {}, embed_.scalar_type());
  torch::Tensor x = torch::embedding(embed_, ids);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Attend layer_attend = [&](const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v) { return attend(l, q, k, v); };
    x = decoder_layer(config_, layers_[l], x, in, layer_attend);
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

namespace {

// A right-padded batch of token lists appended to sequences that already hold `past` tokens: query
// (b, t) sits at position past_b + t and sees cache rows j <= past_b + t. Padding rows compute
// garbage that is neither cached nor returned.
struct ExtendBatch {
  int64_t batch = 0, max_new = 0, max_total = 0;
  std::vector<int64_t> ids, positions;
  std::vector<int64_t> valid_rows, write_seq, write_pos, last_rows;
};

ExtendBatch extend_batch(const Qwen2Config& config, const std::vector<int64_t>& seqs,
                         const std::vector<int64_t>& past,
                         const std::vector<std::vector<int32_t>>& tokens, int64_t capacity,
                         const std::string& where) {
  ExtendBatch e;
  e.batch = static_cast<int64_t>(seqs.size());
  std::set<int64_t> seen;
  for (int64_t b = 0; b < e.batch; ++b) {
    const int64_t n = static_cast<int64_t>(tokens[b].size());
    if (!seen.insert(seqs[b]).second) {
      throw runtime_failure("slot " + std::to_string(seqs[b]) + " appears twice in one batch",
                            where);
    }
    if (n == 0)
      throw runtime_failure("empty token list for slot " + std::to_string(seqs[b]), where);
    if (capacity > 0 && past[b] + n > capacity) {
      throw runtime_failure("slot " + std::to_string(seqs[b]) + " would hold " +
                                std::to_string(past[b] + n) + " tokens, capacity is " +
                                std::to_string(capacity),
                            where, "make the KV cache longer");
    }
    for (int32_t id : tokens[b]) {
      if (id < 0 || id >= config.vocab_size) {
        throw runtime_failure("token id " + std::to_string(id) + " outside the vocabulary", where);
      }
    }
    e.max_new = std::max(e.max_new, n);
    e.max_total = std::max(e.max_total, past[b] + n);
  }
  e.ids.assign(e.batch * e.max_new, 0);
  e.positions.resize(e.batch * e.max_new);
  for (int64_t b = 0; b < e.batch; ++b) {
    const int64_t n = static_cast<int64_t>(tokens[b].size());
    for (int64_t t = 0; t < e.max_new; ++t) {
      e.positions[b * e.max_new + t] = past[b] + t;
      if (t >= n) continue;
      e.ids[b * e.max_new + t] = tokens[b][t];
      e.valid_rows.push_back(b * e.max_new + t);
      e.write_seq.push_back(seqs[b]);
      e.write_pos.push_back(past[b] + t);
    }
    e.last_rows.push_back(b * e.max_new + n - 1);
  }
  return e;
}

// The host arrays of one step, uploaded together in one copy (DESIGN §5: step state goes up
// without a synchronisation per array).
class StepUpload {
public:
  size_t add(const std::vector<int64_t>& values) {
    at_.push_back(static_cast<int64_t>(host_.size()));
    host_.insert(host_.end(), values.begin(), values.end());
    sizes_.push_back(static_cast<int64_t>(values.size()));
    return at_.size() - 1;
  }
  void upload(torch::Device device) { device_ = to_device(host_, device); }
  torch::Tensor operator[](size_t i) const { return device_.narrow(0, at_[i], sizes_[i]); }

private:
  std::vector<int64_t> host_, at_, sizes_;
  torch::Tensor device_;
};

} // namespace

torch::Tensor Qwen2::run_extend(const ExtendInputs& in, const KvSource& kv) const {
  const int64_t batch = in.batch, max_new = in.max_new, max_total = in.max_total;
  const auto device = embed_.device();
  torch::Tensor pos = in.positions.view({batch, max_new});
  torch::Tensor key_pos = torch::arange(max_total, torch::TensorOptions().device(device));
  torch::Tensor mask = key_pos.view({1, 1, 1, max_total}) <= pos.view({batch, 1, max_new, 1});
  torch::Tensor hidden = hidden_states(in.ids.view({batch, max_new}), pos, mask, kv);
  return logits(hidden.view({batch * max_new, -1}).index_select(0, in.last_rows));
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
  if (slots.empty()) return torch::empty({0, config_.vocab_size});
  torch::NoGradGuard no_grad;
  std::vector<int64_t> past;
  for (int64_t slot : slots) past.push_back(cache.length(slot));
  const ExtendBatch e = extend_batch(config_, slots, past, tokens, cache.max_tokens(), where);
  const int64_t batch = e.batch, max_new = e.max_new, max_total = e.max_total;
  const auto device = embed_.device();
  auto long_tensor = [&](const std::vector<int64_t>& v) {
    return torch::tensor(v, torch::kInt64).to(device);
  };
  torch::Tensor rows = long_tensor(e.valid_rows), slot_idx = long_tensor(e.write_seq);
  torch::Tensor pos_idx = long_tensor(e.write_pos), batch_slots = long_tensor(slots);
  const int64_t kv_heads = config_.num_key_value_heads, head_dim = config_.head_dim();

  KvSource cached = [&](size_t layer, const torch::Tensor& k, const torch::Tensor& v) {
    auto store = [&](torch::Tensor& buffer, const torch::Tensor& fresh) {
      torch::Tensor flat = fresh.transpose(1, 2).reshape({batch * max_new, kv_heads, head_dim});
      buffer.index_put_({slot_idx, pos_idx}, flat.index_select(0, rows));
      return buffer.narrow(1, 0, max_total).index_select(0, batch_slots).transpose(1, 2);
    };
    return std::make_pair(store(cache.keys_[layer], k), store(cache.values_[layer], v));
  };
  torch::Tensor out = run_extend({batch, max_new, max_total, long_tensor(e.ids),
                                  long_tensor(e.positions), long_tensor(e.last_rows)},
                                 cached);
  for (int64_t b = 0; b < batch; ++b) {
    cache.length_[static_cast<size_t>(slots[b])] += static_cast<int64_t>(tokens[b].size());
  }
  return out;
}

torch::Tensor Qwen2::extend(PagedKvCache& cache, const std::vector<int64_t>& seqs,
                            const std::vector<std::vector<int32_t>>& tokens,
                            DecodeAttention attention) {
  const std::string where = "Qwen2 paged prefill/decode";
  if (seqs.size() != tokens.size()) {
    throw runtime_failure("got " + std::to_string(seqs.size()) + " sequences for " +
                              std::to_string(tokens.size()) + " token lists",
                          where);
  }
  if (cache.keys.size() != layers_.size() ||
      cache.keys.front().scalar_type() != embed_.scalar_type()) {
    throw runtime_failure("KV cache was made for another model or dtype", where);
  }
  if (seqs.empty()) return torch::empty({0, config_.vocab_size});
  torch::NoGradGuard no_grad;
  std::vector<int64_t> past;
  for (int64_t s : seqs) past.push_back(cache.length(s));
  const ExtendBatch e = extend_batch(config_, seqs, past, tokens, 0, where);
  std::vector<int64_t> counts;
  for (const auto& t : tokens) counts.push_back(static_cast<int64_t>(t.size()));
  const int64_t needed = cache.blocks_to_append(seqs, counts);
  if (needed > cache.free_blocks()) {
    throw runtime_failure("the batch needs " + std::to_string(needed) + " KV blocks, " +
                              std::to_string(cache.free_blocks()) + " are free",
                          where, "raise rollout.kv_cache_tokens");
  }
  for (size_t b = 0; b < seqs.size(); ++b) {
    cache.reserve(seqs[b], static_cast<int64_t>(tokens[b].size()));
  }
  const int64_t batch = e.batch, max_new = e.max_new, max_total = e.max_total;
  const int64_t bs = cache.block_tokens(), width = (max_total + bs - 1) / bs;
  std::vector<int64_t> write_block, write_offset;
  for (size_t i = 0; i < e.write_seq.size(); ++i) {
    write_block.push_back(cache.block_of(e.write_seq[i], e.write_pos[i]));
    write_offset.push_back(e.write_pos[i] % bs);
  }
  std::vector<int64_t> tables_flat(static_cast<size_t>(batch * width), 0), lengths;
  for (int64_t b = 0; b < batch; ++b) {
    const std::vector<int32_t>& table = cache.table(seqs[static_cast<size_t>(b)]);
    std::copy(table.begin(), table.end(), tables_flat.begin() + b * width);
    lengths.push_back(past[static_cast<size_t>(b)] + 1);
  }
  StepUpload up;
  const size_t ids_at = up.add(e.ids), positions_at = up.add(e.positions);
  const size_t last_at = up.add(e.last_rows), rows_at = up.add(e.valid_rows);
  const size_t blocks_at = up.add(write_block), offsets_at = up.add(write_offset);
  const size_t tables_at = up.add(tables_flat), lengths_at = up.add(lengths);
  up.upload(embed_.device());
  torch::Tensor rows = up[rows_at], block_idx = up[blocks_at], offset_idx = up[offsets_at];
  torch::Tensor tables = up[tables_at];
  const int64_t kv_heads = config_.num_key_value_heads;
  const int64_t head_dim = config_.head_dim();
  // The new rows go into their blocks.
  auto write = [&](torch::Tensor& pool, const torch::Tensor& fresh) {
    torch::Tensor flat = fresh.transpose(1, 2).reshape({batch * max_new, kv_heads, head_dim});
    pool.index_put_({block_idx, offset_idx}, flat.index_select(0, rows));
  };
  torch::Tensor out;
  if (attention == DecodeAttention::PagedKernel && max_new == 1) {
    // rollout.decode_attention = paged_kernel: the kernel reads every sequence's blocks in place
    // (every row is a real token: rows is 0..B-1).
    out = logits(decode_hidden(cache,
                               {up[ids_at], up[positions_at], block_idx, offset_idx,
                                tables.view({batch, width}).to(torch::kInt32),
                                up[lengths_at].to(torch::kInt32)},
                               max_total));
  } else {
    // rollout.decode_attention = torch (and every prefill): each sequence's blocks are gathered
    // in table order into [B, kv_heads, L, head_dim] for SDPA.
    KvSource paged = [&](size_t layer, const torch::Tensor& k, const torch::Tensor& v) {
      auto gather = [&](torch::Tensor& pool, const torch::Tensor& fresh) {
        write(pool, fresh);
        return pool.index_select(0, tables)
            .view({batch, width * bs, kv_heads, head_dim})
            .narrow(1, 0, max_total)
            .transpose(1, 2);
      };
      return std::make_pair(gather(cache.keys[layer], k), gather(cache.values[layer], v));
    };
    out = run_extend({batch, max_new, max_total, up[ids_at], up[positions_at], up[last_at]}, paged);
  }
  for (size_t b = 0; b < seqs.size(); ++b) {
    cache.commit(seqs[b], static_cast<int64_t>(tokens[b].size()));
  }
  return out;
}

torch::Tensor Qwen2::decode_hidden(PagedKvCache& cache, const DecodeStep& step,
                                   int64_t max_length) const {
  torch::NoGradGuard no_grad;
  const int64_t batch = step.ids.size(0), heads = config_.num_attention_heads;
  const int64_t kv_heads = config_.num_key_value_heads, head_dim = config_.head_dim();
  LayerAttention paged_kernel = [&](size_t layer, const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v) {
    cache.keys[layer].index_put_({step.write_blocks, step.write_offsets},
                                 k.reshape({batch, kv_heads, head_dim}));
    cache.values[layer].index_put_({step.write_blocks, step.write_offsets},
                                   v.reshape({batch, kv_heads, head_dim}));
    return paged_decode_attention(q.reshape({batch, heads, head_dim}), cache.keys[layer],
                                  cache.values[layer], step.tables, step.lengths, max_length)
        .view({batch, heads, 1, head_dim});
  };
  return hidden_states(step.ids.view({batch, 1}), step.positions.view({batch, 1}), paged_kernel)
      .view({batch, -1});
}

torch::Tensor Qwen2::prefill(KvCache& cache, const std::vector<int64_t>& slots,
                             const std::vector<std::vector<int32_t>>& prompts) {
  return extend(cache, slots, prompts);
}

namespace {
std::vector<std::vector<int32_t>> one_each(const std::vector<int32_t>& tokens) {
  std::vector<std::vector<int32_t>> single;
  single.reserve(tokens.size());
  for (int32_t t : tokens) single.push_back({t});
  return single;
}
} // namespace

torch::Tensor Qwen2::decode(KvCache& cache, const std::vector<int64_t>& slots,
                            const std::vector<int32_t>& tokens) {
  return extend(cache, slots, one_each(tokens));
}

torch::Tensor Qwen2::prefill(PagedKvCache& cache, const std::vector<int64_t>& seqs,
                             const std::vector<std::vector<int32_t>>& prompts) {
  return extend(cache, seqs, prompts, DecodeAttention::Torch);
}

torch::Tensor Qwen2::decode(PagedKvCache& cache, const std::vector<int64_t>& seqs,
                            const std::vector<int32_t>& tokens, DecodeAttention attention) {
  return extend(cache, seqs, one_each(tokens), attention);
}

} // namespace treerpo::model
