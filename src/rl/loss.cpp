#include "treerpo/rl/loss.h"

#include <algorithm>
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
  if (options.agg != "group-token-mean" && options.agg != "token-mean" &&
      options.agg != "seq-mean-token-mean" && options.agg != "dr-grpo")
    throw bad_input("unknown loss aggregation '" + options.agg + "'", "train.loss_agg",
                    "use group-token-mean, token-mean, seq-mean-token-mean or dr-grpo");
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
  std::vector<float> old, samples, positive, negative, positive_samples, negative_samples,
      kl_weight;
  for (int64_t i = 0; i < packed.size(); ++i) {
    if (packed.group[i] < 0) continue;
    index.push_back(i);
    group.push_back(packed.group[i]);
    old.push_back(packed.old_logprobs[i]);
    samples.push_back(packed.samples[i]);
    positive.push_back(packed.advantage_positive[i]);
    negative.push_back(packed.advantage_negative[i]);
    positive_samples.push_back(packed.positive_samples[i]);
    negative_samples.push_back(packed.negative_samples[i]);
    kl_weight.push_back(packed.weight[i]);
  }
  LossResult result;
  result.tokens = packed.loss_tokens();
  result.groups = packed.groups;
  if (index.empty()) {
    // Keeps the graph (and backward) valid for a pack that trains nothing, e.g. a zero-signal tree.
    result.loss = logprobs.sum() * 0.0;
    return result;
  }

  const at::Tensor positions = to_index(index, logprobs);
  const at::Tensor current = logprobs.index_select(0, positions);
  const at::Tensor weight = to_tensor(samples, logprobs);
  const at::Tensor ratio = at::exp(current - to_tensor(old, logprobs));
  const at::Tensor clipped = at::clamp(ratio, 1.0 - options.clip_low, 1.0 + options.clip_high);
  // Per sample through the token, -min(r A, clip(r) A): min(r, clip(r)) for A > 0 and max(r,
  // clip(r)) for A < 0, so the samples' sum needs only each sign's advantage sum.
  at::Tensor per_token = -(to_tensor(positive, logprobs) * at::min(ratio, clipped) +
                           to_tensor(negative, logprobs) * at::max(ratio, clipped));

  if (options.kl_coef > 0) {
    // k3 = exp(ref - new) - (ref - new) - 1 >= 0, unbiased for KL(pi || ref) (Schulman's
    // estimator); the same for every sample through the token.
    const at::Tensor ref = ref_logprobs->detach()
                               .to(logprobs.device(), logprobs.scalar_type())
                               .index_select(0, positions);
    const at::Tensor diff = ref - current;
    const at::Tensor k3 = at::exp(diff) - diff - 1.0;
    per_token = per_token + options.kl_coef * to_tensor(kl_weight, logprobs) * k3;
    result.kl = (k3.detach().to(at::kDouble) * weight).sum().item<double>() /
                weight.to(at::kDouble).sum().item<double>();
  }

  if (options.agg == "group-token-mean") {
    const at::Tensor ids = to_index(group, logprobs);
    const auto opts = per_token.options();
    const at::Tensor sums = at::zeros({packed.groups}, opts).index_add(0, ids, per_token);
    const at::Tensor counts = at::zeros({packed.groups}, opts).index_add(0, ids, weight);
    result.loss = (sums / counts.clamp_min(1.0)).sum();
  } else if (options.agg == "token-mean") {
    result.loss = per_token.sum() / static_cast<double>(result.tokens);
  } else {
    // Per sequence: the token mean (the pack's sums carry 1 / length) or, Dr-GRPO, the token sum
    // over the constant; then the mean over the tree's sequences.
    const double sequences = std::max<int32_t>(1, packed.sequences);
    const double per_sequence = options.agg == "dr-grpo" ? options.dr_grpo_constant : 1.0;
    result.loss = per_token.sum() / (per_sequence * sequences);
  }

  // verl's pg_clipfrac: the share of (token, sample) pairs whose clipped term is the larger loss,
  // i.e. r above 1 + clip_high with A > 0, or below 1 - clip_low with A < 0.
  const at::Tensor r = ratio.detach();
  const at::Tensor clipped_samples =
      to_tensor(positive_samples, logprobs) * (r > 1.0 + options.clip_high).to(r.scalar_type()) +
      to_tensor(negative_samples, logprobs) * (r < 1.0 - options.clip_low).to(r.scalar_type());
  const double samples_total = weight.to(at::kDouble).sum().item<double>();
  result.clip_fraction = clipped_samples.to(at::kDouble).sum().item<double>() / samples_total;
  result.mean_ratio = (r.to(at::kDouble) * weight).sum().item<double>() / samples_total;
  return result;
}

} // namespace treerpo::rl
