#pragma once
// Next-token sampling with Hugging Face semantics and order (repetition penalty, temperature,
// top-k, top-p; greedy at temperature 0) on a batch of rows at once, plus the two quantities the
// TreeRPO rules read from the same logits: the top-k entropy and a distinct second branch token.
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace treerpo::rollout {

// Counter-based random numbers (splitmix64 over seed + counter): one stream per tree node, so a
// tree does not depend on which other branches shared its batch.
class Rng {
public:
  explicit Rng(uint64_t seed = 0) : seed_(seed) {}
  uint64_t next();
  // Uniform in the open interval (0, 1).
  double uniform();
  // A new independent seed derived from this one and `salt` (tree index, node id).
  static uint64_t derive(uint64_t seed, uint64_t salt);

private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

struct SamplingSettings {
  double temperature = 0.6;        // 0 = greedy
  double top_p = 0.85;             // 1 = off
  int64_t top_k = 25;              // 0 = off
  double repetition_penalty = 1.1; // 1 = off
  int64_t entropy_top_k = 20;
  // false: the gate's entropy and the second token's candidates come from the model's log-probs
  // (rollout.entropy_source: raw); true: from the processed sampling distribution.
  bool processed_entropy = false;
};

// HF RepetitionPenaltyLogitsProcessor: every id seen in prompt + generated text (`seen`, bool [B,
// V]) has its logit multiplied by `penalty` when negative, divided by it otherwise.
at::Tensor apply_repetition_penalty(const at::Tensor& logits, const at::Tensor& seen,
                                    double penalty);
// HF TopKLogitsWarper: scores below the k-th largest become -inf (ties with it are kept).
at::Tensor apply_top_k(const at::Tensor& scores, int64_t k);
// HF TopPLogitsWarper (min_tokens_to_keep 1): drop the lowest-probability tokens whose cumulative
// probability (ascending order) is <= 1 - p.
at::Tensor apply_top_p(const at::Tensor& scores, double p);
// The full chain in HF order; returns the sampling probabilities [B, V] (one-hot argmax when
// greedy).
at::Tensor sampling_probs(const at::Tensor& logits, const at::Tensor& seen,
                          const SamplingSettings& s);

// sampling_probs for 0 < top_k < V and temperature > 0 without sorting the vocabulary: one topk of
// top_k + a tie margin scores, top-p over the top-k survivors only (equal probabilities leave in
// id order), and the full softmax of the scores masked to what remains.
struct TopKFirstProbs {
  at::Tensor probs; // [B, V]
  at::Tensor ids;   // [B, M]: candidates; every id with a non-zero probability is among them...
  // [B] bool: ...unless ties with the k-th score run past them; with top-p on, the row's probs are
  // then not sampling_probs' (top-p saw only some of its survivors).
  at::Tensor ties_past_candidates;
};
TopKFirstProbs top_k_first_probs(const at::Tensor& logits, const at::Tensor& seen,
                                 const SamplingSettings& s);
// Entropy (nats) of the k largest probabilities of `scores` (logits or log-probs [B, V]; -inf
// allowed) renormalised over those k, per row [B].
at::Tensor top_k_entropy(const at::Tensor& scores, int64_t k);
// Inverse-CDF draw per row from non-negative weights [B, V] with uniforms [B] in (0, 1).
at::Tensor draw_from_weights(const at::Tensor& weights, const at::Tensor& uniforms);

// A row's sampling distribution kept on the host: the ids with non-zero probability.
struct TokenDistribution {
  std::vector<int32_t> ids;
  std::vector<float> probs;
  std::vector<float> logprobs; // model log-probs (temperature 1) of the same ids
  int32_t draw(Rng& rng) const;
  float logprob_of(int32_t id) const;
};

// One step's draws for every row of a batch.
struct Draws {
  std::vector<int32_t> token;       // sampled next token
  std::vector<float> token_logprob; // its model log-prob (temperature 1): pi_old
  std::vector<float> entropy;       // top-`entropy_top_k` entropy of the model distribution
  std::vector<int32_t> alt_token;   // a different token for a forced-distinct second branch
  std::vector<float> alt_logprob;
};

class Sampler {
public:
  explicit Sampler(SamplingSettings settings) : settings_(settings) {}
  const SamplingSettings& settings() const { return settings_; }

  // logits [B, V] float32; seen bool [B, V] (undefined when the penalty is off); one uniform pair
  // per row: u_token [B] for the sampled token, u_alt [B] for the distinct second token. The
  // entropy is that of the top-`entropy_top_k` of the gate's distribution (processed_entropy);
  // the second token is drawn from the same top-`entropy_top_k`, excluding the sampled one, with
  // probability proportional to exp(logprob / T), a removed (-inf) candidate counting as -99 (the
  // best one when greedy). One host transfer; two when top-p meets more ties with the k-th score
  // than top_k_first_probs' candidates hold (the step then takes sampling_probs).
  Draws draw(const at::Tensor& logits, const at::Tensor& seen, const std::vector<double>& u_token,
             const std::vector<double>& u_alt);
  // Row `row` of the last draw() call's sampling distribution, for later draws from the same point.
  // Read from draw()'s transfer when that carried all of the row's non-zero probabilities (top-k
  // on, or greedy); otherwise one transfer of the row.
  TokenDistribution distribution(int64_t row) const;

private:
  // Draws from probs_ and makes the step's transfer, candidates (and their ties flags) included.
  Draws draw_and_transfer(const at::Tensor& logits, const std::vector<double>& u_token,
                          const std::vector<double>& u_alt, const at::Tensor& candidates,
                          const at::Tensor& ties_past);

  SamplingSettings settings_;
  at::Tensor probs_, logprobs_; // of the last draw() call
  // Of the last draw() call, on the host: per row `width_` candidates' ids, probs and log-probs
  // (width_ 0: none), and whether ties with the k-th score ran past them.
  int64_t width_ = 0;
  std::vector<float> candidates_;
  std::vector<bool> ties_past_;
};

} // namespace treerpo::rollout
