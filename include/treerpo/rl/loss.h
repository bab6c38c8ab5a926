#pragma once
// The clipped policy loss over one packed tree (DESIGN §4 rule 7): PPO-clip per token with the
// ratio against the sampling-time log-probs, aggregated per train.loss_agg, plus an optional k3 KL
// to a frozen reference model.
#include <string>

#include <ATen/ATen.h>

#include "treerpo/rl/pack.h"

namespace treerpo::rl {

struct LossOptions {
  // group-token-mean | token-mean | seq-mean-token-mean | dr-grpo
  std::string agg = "group-token-mean";
  double clip_low = 0.2;          // epsilon_low
  double clip_high = 0.2;         // epsilon_high
  double dr_grpo_constant = 2600; // dr-grpo: token sum / this constant
  double kl_coef = 0.0;           // beta; > 0 needs ref_logprobs
};

// Token counts and means below count a token once per sample through it (PackedBatch::samples):
// a prefix shared by k samples is k of the samples' tokens, as in a per-sample loss.
struct LossResult {
  at::Tensor loss;            // scalar, with grad through `logprobs`
  double clip_fraction = 0.0; // share of loss tokens whose clipped term was chosen (pg_clipfrac)
  double mean_ratio = 0.0;    // mean of exp(new - old) over loss tokens
  double kl = 0.0;            // mean k3 over loss tokens (0 without a reference)
  int64_t tokens = 0;         // loss tokens (group >= 0)
  int32_t groups = 0;         // loss groups
};

// `logprobs` [N] = log p(tokens[i] | ancestors) of the current policy for every packed token (the
// model's tree_logprobs), with autograd. Per loss token and sample through it:
//   l = -min(r A, clip(r, 1 - clip_low, 1 + clip_high) A) + kl_coef * k3,
//   r = exp(new - old), k3 = exp(ref - new) - (ref - new) - 1;
// the samples' terms are summed per token exactly (from the pack's per-sign advantage sums), so a
// shared prefix trains as it would in each sample's own sequence. Aggregation over loss tokens:
//   group-token-mean: sum over groups of the token mean within the group (the public TreeRPO
//                     reference);
//   token-mean:       mean over all loss tokens (DAPO);
//   seq-mean-token-mean: each sequence's token mean, then the mean over the tree's sequences
//                     (DeepSeekMath GRPO; needs a pack whose credit was assigned with
//                     per_sequence_mean, so its advantage sums carry 1 / length);
//   dr-grpo:          each sequence's token sum / dr_grpo_constant, then the mean over the tree's
//                     sequences (Dr-GRPO, Liu et al. 2025, eq. 3: 1/G sum_i sum_t, the length
//                     normaliser replaced by the constant).
// The KL term weighs each token by PackedBatch::weight (its samples, or sum of 1 / length).
// A pack with no loss tokens gives a zero loss still connected to `logprobs`. Throws bad_input on
// an unknown aggregation or kl_coef > 0 without reference log-probs, runtime_failure on sizes that
// do not match the pack.
LossResult policy_loss(const at::Tensor& logprobs, const PackedBatch& packed,
                       const LossOptions& options, const at::Tensor* ref_logprobs = nullptr);

} // namespace treerpo::rl
