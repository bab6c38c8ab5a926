#include "treerpo/model/token_logprobs.h"

#include <algorithm>

#include <torch/csrc/autograd/custom_function.h>

#include "treerpo/util/autocast.h"

namespace treerpo::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

int64_t rows_per_chunk(int64_t requested, int64_t vocab) {
  if (requested > 0) return requested;
  constexpr int64_t kChunkFloats = int64_t{1} << 26; // 256 MB of float32 logits
  return std::max<int64_t>(1, kChunkFloats / std::max<int64_t>(1, vocab));
}

// float32 logits of rows [begin, begin + n): under autocast the matmul runs in its dtype.
torch::Tensor chunk_logits(const torch::Tensor& x, const torch::Tensor& weight, int64_t begin,
                           int64_t n) {
  return torch::matmul(x.narrow(0, begin, n), weight.t()).to(torch::kFloat32);
}

struct TokenLogprobs : public torch::autograd::Function<TokenLogprobs> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& targets,
                               int64_t chunk) {
    const auto device_type = x.device().type();
    const AutocastState autocast = autocast_state(device_type);
    const int64_t n = x.size(0);
    torch::Tensor out = torch::empty({n}, x.options().dtype(torch::kFloat32));
    torch::Tensor lse = torch::empty({n}, x.options().dtype(torch::kFloat32));
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t rows = std::min(chunk, n - begin);
      const torch::Tensor logits = chunk_logits(x, weight, begin, rows);
      const torch::Tensor chunk_lse = torch::logsumexp(logits, 1);
      lse.narrow(0, begin, rows).copy_(chunk_lse);
      out.narrow(0, begin, rows)
          .copy_(logits.gather(1, targets.narrow(0, begin, rows).view({-1, 1})).view({-1}) -
                 chunk_lse);
    }
    ctx->save_for_backward({x, weight, targets, lse});
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["autocast"] = autocast.enabled;
    ctx->saved_data["autocast_dtype"] = autocast.dtype;
    return out;
  }

  // d out_i / d logits_iv = [v == t_i] - softmax_iv; through logits = x W^T to x and W.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &weight = saved[1], &targets = saved[2], &lse = saved[3];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const AutocastState autocast{ctx->saved_data["autocast"].toBool(),
                                 ctx->saved_data["autocast_dtype"].toScalarType()};
    AutocastScope scope(x.device().type(), autocast);
    const torch::Tensor grad = grad_outputs[0].to(torch::kFloat32);
    const int64_t n = x.size(0);
    torch::Tensor grad_x = torch::zeros_like(x);
    torch::Tensor grad_w = torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat32));
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t rows = std::min(chunk, n - begin);
      const torch::Tensor g = grad.narrow(0, begin, rows).view({-1, 1});
      torch::Tensor dlogits = -torch::exp(chunk_logits(x, weight, begin, rows) -
                                          lse.narrow(0, begin, rows).view({-1, 1})) *
                              g;
      dlogits.scatter_add_(1, targets.narrow(0, begin, rows).view({-1, 1}), g);
      const torch::Tensor xs = x.narrow(0, begin, rows);
      grad_x.narrow(0, begin, rows).copy_(torch::matmul(dlogits.to(weight.scalar_type()), weight));
      grad_w.add_(torch::matmul(dlogits.t().to(xs.scalar_type()), xs).to(torch::kFloat32));
    }
    return {grad_x, grad_w.to(weight.scalar_type()), torch::Tensor(), torch::Tensor()};
  }
};

} // namespace

torch::Tensor token_logprobs(const torch::Tensor& x, const torch::Tensor& weight,
                             const torch::Tensor& targets, int64_t chunk_rows) {
  return TokenLogprobs::apply(x, weight, targets, rows_per_chunk(chunk_rows, weight.size(0)));
}

} // namespace treerpo::model
