#pragma once
// One Qwen2 decoder layer as a function of its weights and inputs, shared by every forward path,
// and its checkpointed form for the packed tree forward (DESIGN §5: LibTorch has no built-in
// checkpointing).
#include <functional>
#include <utility>

#include <torch/types.h>

#include "treerpo/model/qwen2.h"

namespace treerpo::model {

// What every layer of one forward shares: RoPE tables [B, 1, T, head_dim] and the attention mask
// with the query-head group folded into the query length, [B, 1, group * T, L].
struct LayerInputs {
  torch::Tensor cos, sin, group_mask;
};
// `mask` [B, 1, T, L] is true where a query may attend to key l (undefined: the attention needs
// none).
LayerInputs layer_inputs(const Qwen2Config& c, const torch::Tensor& positions,
                         const torch::Tensor& mask, torch::Dtype dtype);

// Given the layer's fresh keys and values [B, kv_heads, T, head_dim] (RoPE applied), returns all
// the queries may see [B, kv_heads, L, head_dim].
using KvJoin = std::function<std::pair<torch::Tensor, torch::Tensor>(const torch::Tensor& k,
                                                                     const torch::Tensor& v)>;

// x [B, T, hidden] -> the layer's output [B, T, hidden].
torch::Tensor decoder_layer(const Qwen2Config& c, const Qwen2::Layer& w, const torch::Tensor& x,
                            const LayerInputs& in, const KvJoin& kv);

// The attention itself, for a path that does not go through SDPA (the paged decode kernel): given
// the queries [B, heads, T, head_dim] and the fresh keys/values [B, kv_heads, T, head_dim] (RoPE
// applied), returns the attention output [B, heads, T, head_dim].
using Attend = std::function<torch::Tensor(const torch::Tensor& q, const torch::Tensor& k,
                                           const torch::Tensor& v)>;
torch::Tensor decoder_layer(const Qwen2Config& c, const Qwen2::Layer& w, const torch::Tensor& x,
                            const LayerInputs& in, const Attend& attend);

// A layer whose queries see their ancestors' keys/values [B, kv_heads, C, head_dim] (C may be 0)
// followed by their own: its output and its fresh keys/values, which later levels of
// the tree attend to.
struct LayerOutput {
  torch::Tensor hidden, keys, values;
};
LayerOutput decoder_layer_over_ancestors(const Qwen2Config& c, const Qwen2::Layer& w,
                                         const torch::Tensor& x, const LayerInputs& in,
                                         const torch::Tensor& ancestor_keys,
                                         const torch::Tensor& ancestor_values);

// The same values as decoder_layer_over_ancestors, as ONE autograd node that saves only its inputs
// (x, ancestors, rope tables, mask, weights) and recomputes the layer in backward under the
// autocast state the forward ran with.
LayerOutput checkpointed_decoder_layer(const Qwen2Config& c, const Qwen2::Layer& w,
                                       const torch::Tensor& x, const LayerInputs& in,
                                       const torch::Tensor& ancestor_keys,
                                       const torch::Tensor& ancestor_values);

} // namespace treerpo::model
