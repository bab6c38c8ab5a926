#include "treerpo/rl/loss.h"

#include <string>

#include "treerpo/util/error.h"

namespace treerpo::rl {
namespace {

at::Tensor to_tensor(const std::vector<float>& values, const at::Tensor& like) {
  return at::tensor(at::ArrayRef<float>(values), at::TensorOptions().dtype(at::kFloat))
      .to(like.device(), like.scalar_type());
}

at::Tensor to_index(const std::vector<int64_t>& values, const at::Tensor& like) {
  return at::tensor(at::ArrayRef<int64_t>(values), at::TensorOptions().dtype(at::kLong))
      .to(like.device());
}

} // namespace

LossResult policy_loss(const at::Tensor& logprobs, const PackedBatch& packed,
                       const LossOptions& options, const at::Tensor* ref_logprobs) {
  if (options.agg != "group-token-mean" && options.agg != "token-mean" && options.agg != "dr-grpo")
    throw bad_input("unknown loss aggregation '" + options.agg + "'", "train.loss_agg",
                    "use group-token-mean, token-mean or dr-grpo");
  if (logprobs.dim() != 1 || logprobs.size(0) != packed.size())
    throw runtime_failure("log-probs have shape " + std::to_string(logprobs.numel()) +
                              ", the pack has " + std::to_string(packed.size()) + " tokens",
                          "policy_loss", "pass the model's tree_logprobs of this pack");
  if (options.kl_coef > 0 && (ref_logprobs == nullptr || !ref_logprobs->defined() ||
                              ref_logprobs->numel() != packed.size()))
    throw bad_input("kl_coef > 0 needs the reference model's log-probs of every packed token",
                    "train.kl_coef", "load a reference model or set train.kl_coef: 0");
  if (options.agg == "dr-grpo" && !(options.dr_grpo_constant > 0))
    throw bad_input("dr-grpo needs a positive constant", "train.dr_grpo_constant",
                    "set it to the maximum answer length, e.g. 2600");

  std::vector<int64_t> index, group;
  std::vector<float> old, advantage;
  for (int64_t i = 0; i < packed.size(); ++i) {
    if (packed.group[i] < 0) continue;
    index.push_back(i);
    group.push_back(packed.group[i]);
    old.push_back(packed.old_logprobs[i]);
    advantage.push_back(packed.advantages[i]);
  }
  LossResult result;
  result.tokens = static_cast<int64_t>(index.size());
  result.groups = packed.groups;
  if (index.empty()) {
    // Keeps the graph (and backward) valid for a pack that trains nothing, e.g. a zero-signal tree.
    result.loss = logprobs.sum() * 0.0;
    return result;
  }

  const at::Tensor positions = to_index(index, logprobs);
  const at::Tensor current = logprobs.index_select(0, positions);
  const at::Tensor adv = to_tensor(advantage, logprobs);
  const at::Tensor ratio = at::exp(current - to_tensor(old, logprobs));
  const at::Tensor unclipped = ratio * adv;
  const at::Tensor clipped =
      at::clamp(ratio, 1.0 - options.clip_low, 1.0 + options.clip_high) * adv;
  at::Tensor per_token = -at::min(unclipped, clipped);

  if (options.kl_coef > 0) {
    // k3 = exp(ref - new) - (ref - new) - 1 >= 0, unbiased for KL(pi || ref) (Schulman's
    // estimator).
    const at::Tensor ref = ref_logprobs->detach()
                               .to(logprobs.device(), logprobs.scalar_type())
                               .index_select(0, positions);
    const at::Tensor diff = ref - current;
    const at::Tensor k3 = at::exp(diff) - diff - 1.0;
    per_token = per_token + options.kl_coef * k3;
    result.kl = k3.detach().mean().item<double>();
  }

  if (options.agg == "group-token-mean") {
    const at::Tensor ids = to_index(group, logprobs);
    const auto opts = per_token.options();
    const at::Tensor sums = at::zeros({packed.groups}, opts).index_add(0, ids, per_token);
    const at::Tensor counts =
        at::zeros({packed.groups}, opts).index_add(0, ids, at::ones_like(per_token));
    result.loss = (sums / counts.clamp_min(1.0)).sum();
  } else if (options.agg == "token-mean") {
    result.loss = per_token.sum() / static_cast<double>(result.tokens);
  } else {
    result.loss = per_token.sum() / options.dr_grpo_constant;
  }

  // verl's pg_clipfrac: the clipped term is the larger loss, i.e. the one min() picked strictly.
  const at::Tensor picked_clipped = (-clipped).detach() > (-unclipped).detach();
  result.clip_fraction = picked_clipped.to(at::kDouble).mean().item<double>();
  result.mean_ratio = ratio.detach().to(at::kDouble).mean().item<double>();
  return result;
}

} // namespace treerpo::rl
