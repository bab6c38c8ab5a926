#include "decoder_layer.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include "treerpo/model/layers.h"
#include "treerpo/util/autocast.h"
#include "treerpo/util/error.h"

namespace treerpo::model {

LayerInputs layer_inputs(const Qwen2Config& c, const torch::Tensor& positions,
                         const torch::Tensor& mask, torch::Dtype dtype) {
  auto [cos, sin] = rope_tables(positions, c.head_dim(), c.rope_theta, dtype);
  // Query head h uses kv head h / group (transformers' repeat_kv). Folding the group into the query
  // length, [B, kv_heads, group * T, head_dim], lets every query head share its kv head's keys
  // uncopied.
  const int64_t group = c.num_attention_heads / c.num_key_value_heads;
  return {cos.unsqueeze(1), sin.unsqueeze(1),
          group == 1 || !mask.defined() ? mask : mask.repeat({1, 1, group, 1})};
}

torch::Tensor decoder_layer(const Qwen2Config& c, const Qwen2::Layer& w, const torch::Tensor& x,
                            const LayerInputs& in, const Attend& attend) {
  const int64_t batch = x.size(0), len = x.size(1), heads = c.num_attention_heads;
  const int64_t kv_heads = c.num_key_value_heads, head_dim = c.head_dim();
  torch::Tensor h = rms_norm(x, w.input_norm, c.rms_norm_eps);
  torch::Tensor q = torch::linear(h, w.q_w, w.q_b).view({batch, len, heads, head_dim});
  torch::Tensor k = torch::linear(h, w.k_w, w.k_b).view({batch, len, kv_heads, head_dim});
  torch::Tensor v = torch::linear(h, w.v_w, w.v_b).view({batch, len, kv_heads, head_dim});
  q = apply_rope(q.transpose(1, 2), in.cos, in.sin);
  k = apply_rope(k.transpose(1, 2), in.cos, in.sin);
  torch::Tensor out = attend(q, k, v.transpose(1, 2));
  out = out.transpose(1, 2).reshape({batch, len, -1});
  torch::Tensor y = x + torch::linear(out, w.o_w);
  h = rms_norm(y, w.post_norm, c.rms_norm_eps);
  return y + torch::linear(torch::silu(torch::linear(h, w.gate_w)) * torch::linear(h, w.up_w),
                           w.down_w);
}

torch::Tensor decoder_layer(const Qwen2Config& c, const Qwen2::Layer& w, const torch::Tensor& x,
                            const LayerInputs& in, const KvJoin& kv) {
  const int64_t group = c.num_attention_heads / c.num_key_value_heads;
  Attend sdpa = [&](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    const int64_t batch = q.size(0), heads = q.size(1), len = q.size(2), head_dim = q.size(3);
    auto [keys, values] = kv(k, v);
    // group_mask is true where a query may attend (SDPA's bool-mask convention); every row allows
    // a key.
    torch::Tensor out = at::scaled_dot_product_attention(
        q.reshape({batch, heads / group, group * len, head_dim}), keys, values, in.group_mask);
    return out.view({batch, heads, len, head_dim});
  };
  return decoder_layer(c, w, x, in, sdpa);
}

LayerOutput decoder_layer_over_ancestors(const Qwen2Config& c, const Qwen2::Layer& w,
                                         const torch::Tensor& x, const LayerInputs& in,
                                         const torch::Tensor& ancestor_keys,
                                         const torch::Tensor& ancestor_values) {
  LayerOutput o;
  auto join = [](const torch::Tensor& ancestors, const torch::Tensor& fresh) {
    return ancestors.size(2) > 0 ? torch::cat({ancestors, fresh}, 2) : fresh;
  };
  o.hidden = decoder_layer(c, w, x, in, [&](const torch::Tensor& k, const torch::Tensor& v) {
    o.keys = k;
    o.values = v;
    return std::make_pair(join(ancestor_keys, k), join(ancestor_values, v));
  });
  return o;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The Function's tensor inputs, in this order, then the layer's weights in Layer's field order.
enum Input : size_t { kX, kCos, kSin, kMask, kAncestorKeys, kAncestorValues, kWeights };

variable_list function_inputs(const Qwen2::Layer& w, const torch::Tensor& x, const LayerInputs& in,
                              const torch::Tensor& ancestor_keys,
                              const torch::Tensor& ancestor_values) {
  variable_list t{x, in.cos, in.sin, in.group_mask, ancestor_keys, ancestor_values};
  t.insert(t.end(), {w.input_norm, w.q_w, w.q_b, w.k_w, w.k_b, w.v_w, w.v_b, w.o_w, w.post_norm,
                     w.gate_w, w.up_w, w.down_w});
  return t;
}

LayerOutput run_layer(const Qwen2Config& c, const variable_list& t) {
  const Qwen2::Layer w{t[kWeights + 0], t[kWeights + 1], t[kWeights + 2],  t[kWeights + 3],
                       t[kWeights + 4], t[kWeights + 5], t[kWeights + 6],  t[kWeights + 7],
                       t[kWeights + 8], t[kWeights + 9], t[kWeights + 10], t[kWeights + 11]};
  return decoder_layer_over_ancestors(c, w, t[kX], {t[kCos], t[kSin], t[kMask]}, t[kAncestorKeys],
                                      t[kAncestorValues]);
}

struct LayerCheckpoint : torch::autograd::Function<LayerCheckpoint> {
  static variable_list forward(AutogradContext* ctx, at::TensorList inputs, int64_t hidden_size,
                               int64_t heads, int64_t kv_heads, double eps) {
    const AutocastState autocast = autocast_state(inputs[kX].device().type());
    ctx->saved_data["hidden_size"] = hidden_size;
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["kv_heads"] = kv_heads;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["autocast"] = autocast.enabled;
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(autocast.dtype);
    // Grads of outputs nobody used (the last level's keys/values) stay undefined and are skipped
    // in backward, instead of back-propagating materialised zeros.
    ctx->set_materialize_grads(false);
    ctx->save_for_backward(inputs.vec());
    LayerOutput o = run_layer(shape(hidden_size, heads, kv_heads, eps), inputs.vec());
    return {o.hidden, o.keys, o.values};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // The engine enables grad mode here only for create_graph; the recompute's gradients are not
    // themselves differentiable, so a second derivative would be silently wrong.
    if (at::GradMode::is_enabled()) {
      throw runtime_failure("a checkpointed layer cannot be differentiated twice (create_graph)",
                            "gradient checkpointing",
                            "turn gradient checkpointing off for higher-order gradients");
    }
    variable_list inputs = ctx->get_saved_variables();
    // Detached copies cut the recomputed graph at the inputs, so backward never reaches into the
    // graph around this node and nothing outside it is touched twice.
    variable_list wanted;
    std::vector<size_t> wanted_at;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const bool needs_grad = ctx->needs_input_grad(i);
      inputs[i] = inputs[i].detach().requires_grad_(needs_grad);
      if (!needs_grad) continue;
      wanted.push_back(inputs[i]);
      wanted_at.push_back(i);
    }
    const auto& d = ctx->saved_data;
    const AutocastState autocast{d.at("autocast").toBool(),
                                 static_cast<at::ScalarType>(d.at("autocast_dtype").toInt())};
    LayerOutput o;
    {
      at::AutoGradMode enable(true);
      AutocastScope scope(inputs[kX].device().type(), autocast);
      o = run_layer(shape(d.at("hidden_size").toInt(), d.at("heads").toInt(),
                          d.at("kv_heads").toInt(), d.at("eps").toDouble()),
                    inputs);
    }
    variable_list outputs, output_grads;
    const torch::Tensor recomputed[] = {o.hidden, o.keys, o.values};
    for (size_t j = 0; j < 3; ++j) {
      if (!grads[j].defined() || !recomputed[j].requires_grad()) continue;
      outputs.push_back(recomputed[j]);
      output_grads.push_back(grads[j]);
    }
    variable_list input_grads;
    if (!outputs.empty() && !wanted.empty()) {
      input_grads = torch::autograd::grad(outputs, wanted, output_grads, /*retain_graph=*/false,
                                          /*create_graph=*/false, /*allow_unused=*/true);
    }
    // One entry per forward argument: the tensors, then the four numbers (no gradient).
    variable_list result(inputs.size() + 4);
    for (size_t k = 0; k < wanted.size(); ++k) {
      const bool used = k < input_grads.size() && input_grads[k].defined();
      result[wanted_at[k]] = used ? input_grads[k] : torch::zeros_like(wanted[k]);
    }
    return result;
  }

  // The config fields a layer reads (RoPE tables come in as inputs).
  static Qwen2Config shape(int64_t hidden_size, int64_t heads, int64_t kv_heads, double eps) {
    Qwen2Config c;
    c.hidden_size = hidden_size;
    c.num_attention_heads = heads;
    c.num_key_value_heads = kv_heads;
    c.rms_norm_eps = eps;
    return c;
  }
};

} // namespace

LayerOutput checkpointed_decoder_layer(const Qwen2Config& c, const Qwen2::Layer& w,
                                       const torch::Tensor& x, const LayerInputs& in,
                                       const torch::Tensor& ancestor_keys,
                                       const torch::Tensor& ancestor_values) {
  const variable_list inputs = function_inputs(w, x, in, ancestor_keys, ancestor_values);
  variable_list out =
      LayerCheckpoint::apply(at::TensorList(inputs), c.hidden_size, c.num_attention_heads,
                             c.num_key_value_heads, c.rms_norm_eps);
  return {out[0], out[1], out[2]};
}

} // namespace treerpo::model
