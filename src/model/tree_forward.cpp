// The packed tree forward (DESIGN §5): every unique tree token is computed once. The tree is cut
// into segments (maximal runs where each token's parent is the token before it) and run level by
// level, each level in batches of segments of similar length (model/tree_levels.h): a segment
// attends causally to itself and to its ancestors' keys/values, gathered with autograd from the
// levels already computed. No N x N mask is built; a batch's mask covers only its own segments.
// With gradient checkpointing each layer of each batch is one autograd node whose inputs are the
// batch's hidden states and the gathered ancestor keys/values and whose outputs include the batch's
// fresh keys/values, so its recompute in backward has no side effects.
#include <algorithm>
#include <string>

#include "decoder_layer.h"
#include "treerpo/model/layers.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/model/token_logprobs.h"
#include "treerpo/model/tree_levels.h"
#include "treerpo/util/error.h"

namespace treerpo::model {

void Qwen2::set_level_batching(const LevelBatching& batching) {
  level_batching_ = batching;
}

LevelBatching Qwen2::level_batching() const {
  if (level_batching_) return *level_batching_;
  return LevelBatching::for_shape(config_.hidden_size,
                                  config_.num_key_value_heads * config_.head_dim());
}

torch::Tensor Qwen2::tree_logprobs(const PackedTree& tree) {
  const int64_t n = static_cast<int64_t>(tree.tokens.size());
  if (tree.parent.size() != tree.tokens.size()) {
    throw runtime_failure("PackedTree has " + std::to_string(tree.tokens.size()) + " tokens but " +
                              std::to_string(tree.parent.size()) + " parents",
                          "Qwen2::tree_logprobs");
  }
  const auto device = embed_.device();
  if (n == 0) return torch::zeros({0}, torch::TensorOptions().device(device));

  for (int64_t i = 0; i < n; ++i) {
    const int32_t p = tree.parent[i];
    const int32_t id = tree.tokens[i];
    if (p < -1 || p >= i || id < 0 || id >= config_.vocab_size) {
      throw runtime_failure("token " + std::to_string(i) + " has parent " + std::to_string(p) +
                                " and id " + std::to_string(id) +
                                " (a parent must come earlier; ids must be in the vocabulary)",
                            "Qwen2::tree_logprobs");
    }
  }
  const std::vector<TreeSegment> segments = tree_segments(tree.parent);
  const std::vector<LevelBatch> batches = level_batches(segments, level_batching());

  const int64_t kv_heads = config_.num_key_value_heads, head_dim = config_.head_dim();
  auto long_tensor = [&](const std::vector<int64_t>& v) {
    return torch::tensor(v, torch::kInt64).to(device);
  };
  // Row of each computed token in the concatenation of the levels' outputs (level order).
  std::vector<int64_t> row_of(n, -1);
  int64_t rows_done = 0;
  std::vector<std::vector<torch::Tensor>> keys(layers_.size()), values(layers_.size());
  std::vector<torch::Tensor> hidden_parts;

  for (const LevelBatch& level_batch : batches) {
    std::vector<const TreeSegment*> group;
    for (int64_t k : level_batch.segments) group.push_back(&segments[static_cast<size_t>(k)]);
    const int64_t span = level_batch.span, context = level_batch.context;
    const int64_t batch = static_cast<int64_t>(group.size());
    std::vector<int64_t> ids(batch * span, 0), positions(batch * span), valid;
    std::vector<int64_t> context_rows(batch * context, 0), context_len(batch);
    for (int64_t b = 0; b < batch; ++b) {
      const TreeSegment& s = *group[b];
      for (int64_t t = 0; t < span; ++t) {
        positions[b * span + t] = s.depth + t;
        if (t >= s.length) continue;
        ids[b * span + t] = tree.tokens[s.first + t];
        row_of[s.first + t] = rows_done + static_cast<int64_t>(valid.size());
        valid.push_back(b * span + t);
      }
      context_len[b] = s.depth;
      int64_t j = s.depth - 1;
      for (int64_t a = tree.parent[s.first]; a >= 0; a = tree.parent[a]) {
        context_rows[b * context + j--] = row_of[a];
      }
    }
    torch::Tensor pos = long_tensor(positions).view({batch, span});
    // Keys are [ancestors (padded to `context`) | own span]: ancestors up to the segment's depth,
    // own tokens causally. Padding queries see their own padding keys, so no row is fully masked.
    auto key_opts = torch::TensorOptions().device(device);
    torch::Tensor sees_context = torch::arange(context, key_opts).view({1, 1, 1, context}) <
                                 long_tensor(context_len).view({batch, 1, 1, 1});
    torch::Tensor t_idx = torch::arange(span, key_opts);
    torch::Tensor sees_own = (t_idx.view({1, span}) <= t_idx.view({span, 1}))
                                 .view({1, 1, span, span})
                                 .expand({batch, 1, span, span});
    torch::Tensor mask = torch::cat({sees_context.expand({batch, 1, span, context}), sees_own}, 3);
    torch::Tensor valid_rows = long_tensor(valid), ctx_rows = long_tensor(context_rows);
    const LayerInputs in = layer_inputs(config_, pos, mask, embed_.scalar_type());

    // Ancestors' keys (or values) of every segment, [B, kv_heads, context, head_dim], gathered with
    // autograd from the levels already computed; empty (context 0) at the first level.
    auto ancestors = [&](const std::vector<torch::Tensor>& done) {
      if (context == 0) return torch::empty({batch, kv_heads, 0, head_dim}, embed_.options());
      return torch::cat(done, 0)
          .index_select(0, ctx_rows)
          .view({batch, context, kv_heads, head_dim})
          .transpose(1, 2);
    };
    auto own_rows = [&](const torch::Tensor& fresh) {
      return fresh.transpose(1, 2)
          .reshape({batch * span, kv_heads, head_dim})
          .index_select(0, valid_rows);
    };
    torch::Tensor hidden = torch::embedding(embed_, long_tensor(ids).view({batch, span}));
    for (size_t l = 0; l < layers_.size(); ++l) {
      const torch::Tensor ancestor_keys = ancestors(keys[l]),
                          ancestor_values = ancestors(values[l]);
      const LayerOutput out = gradient_checkpointing_
                                  ? checkpointed_decoder_layer(config_, layers_[l], hidden, in,
                                                               ancestor_keys, ancestor_values)
                                  : decoder_layer_over_ancestors(config_, layers_[l], hidden, in,
                                                                 ancestor_keys, ancestor_values);
      keys[l].push_back(own_rows(out.keys));
      values[l].push_back(own_rows(out.values));
      hidden = out.hidden;
    }
    hidden_parts.push_back(hidden.reshape({batch * span, -1}).index_select(0, valid_rows));
    rows_done += static_cast<int64_t>(valid.size());
  }

  // log p(token i | ancestors) comes from the logits at i's parent.
  std::vector<int64_t> children, parent_rows, child_ids;
  for (int64_t i = 0; i < n; ++i) {
    if (tree.parent[i] < 0) continue;
    children.push_back(i);
    parent_rows.push_back(row_of[tree.parent[i]]);
    child_ids.push_back(tree.tokens[i]);
  }
  torch::Tensor out =
      torch::zeros({n}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  if (children.empty()) return out;
  torch::Tensor hidden = torch::cat(hidden_parts, 0).index_select(0, long_tensor(parent_rows));
  // Chunked over rows, forward and backward: the [tokens, vocab] logits never exist at once.
  torch::Tensor logprobs = token_logprobs(rms_norm(hidden, final_norm_, config_.rms_norm_eps),
                                          lm_head_, long_tensor(child_ids));
  return out.index_put({long_tensor(children)}, logprobs);
}

} // namespace treerpo::model
