#include "treerpo/train/tree_loss.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/torch.h>

#include "treerpo/model/tree_pieces.h"

namespace treerpo::train {
namespace {

torch::Tensor indices(const std::vector<int64_t>& v, const torch::Device& device) {
  return torch::tensor(v, torch::kInt64).to(device);
}

// Tree indices of the tokens `piece` owns, in the order of piece.owned.
std::vector<int64_t> owned_sources(const model::TreePiece& piece) {
  std::vector<int64_t> sources;
  for (int64_t k : piece.owned) sources.push_back(piece.source[static_cast<size_t>(k)]);
  return sources;
}

// Log-probs of every tree token, piece by piece, without autograd.
torch::Tensor piecewise_logprobs(model::Qwen2& model, const std::vector<model::TreePiece>& pieces,
                                 int64_t tokens, const AutocastState& precision) {
  torch::NoGradGuard no_grad;
  const torch::Device device = model.parameters().front().device();
  torch::Tensor out = torch::zeros({tokens}, torch::TensorOptions().device(device));
  for (const model::TreePiece& piece : pieces) {
    torch::Tensor lp;
    {
      AutocastScope scope(device.type(), precision);
      lp = model.tree_logprobs(piece.tree);
    }
    out.index_copy_(0, indices(owned_sources(piece), device),
                    lp.index_select(0, indices(piece.owned, device)));
  }
  return out;
}

} // namespace

rl::LossResult tree_loss_backward(model::Qwen2& policy, const rl::PackedBatch& packed,
                                  const TreeLossSetup& setup, double weight) {
  const torch::Device device = policy.parameters().front().device();
  // Without a budget the tree is never cut: no pieces to build.
  const std::vector<model::TreePiece> pieces =
      setup.max_tokens_per_forward > 0
          ? model::split_tree(packed.tree, setup.max_tokens_per_forward)
          : std::vector<model::TreePiece>{};
  if (pieces.size() <= 1) {
    torch::Tensor logprobs, ref;
    {
      AutocastScope scope(device.type(), setup.precision);
      logprobs = policy.tree_logprobs(packed.tree);
      if (setup.reference) {
        torch::NoGradGuard no_grad;
        ref = setup.reference->tree_logprobs(packed.tree);
      }
    }
    rl::LossResult r =
        rl::policy_loss(logprobs, packed, setup.options, setup.reference ? &ref : nullptr);
    (r.loss * weight).backward();
    return r;
  }
  // Pass 1: every token's log-prob, the loss and its gradient with respect to them.
  const int64_t n = packed.size();
  const torch::Tensor all = piecewise_logprobs(policy, pieces, n, setup.precision).requires_grad_();
  torch::Tensor ref;
  if (setup.reference) ref = piecewise_logprobs(*setup.reference, pieces, n, setup.precision);
  rl::LossResult r = rl::policy_loss(all, packed, setup.options, setup.reference ? &ref : nullptr);
  const torch::Tensor d_logprobs = torch::autograd::grad({r.loss * weight}, {all})[0];
  r.loss = r.loss.detach();
  // Pass 2: each piece's forward with autograd, its owned tokens carrying their gradient.
  for (const model::TreePiece& piece : pieces) {
    torch::Tensor lp;
    {
      AutocastScope scope(device.type(), setup.precision);
      lp = policy.tree_logprobs(piece.tree);
    }
    (lp.index_select(0, indices(piece.owned, device)) *
     d_logprobs.index_select(0, indices(owned_sources(piece), device)))
        .sum()
        .backward();
  }
  return r;
}

} // namespace treerpo::train
