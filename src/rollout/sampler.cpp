#include "treerpo/rollout/sampler.h"

#include <algorithm>
#include <limits>
#include <string>

#include <ATen/ATen.h>

#include "treerpo/util/error.h"
#include "treerpo/util/host_transfer.h"

namespace treerpo::rollout {

namespace {

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
// The log-prob the reference gives a candidate its distribution removed (vLLM's -inf).
constexpr double kRemovedLogprob = -99.0;
// Candidates past top_k, for ties with the k-th score (apply_top_k keeps them all); more ties than
// this send a top-p step down the reference path.
constexpr int64_t kTieMargin = 16;

at::Tensor uniforms_on(const std::vector<double>& u, const at::Tensor& like) {
  return to_device(std::vector<float>(u.begin(), u.end()), like.device());
}

} // namespace

uint64_t Rng::next() {
  return mix(seed_ + (++counter_) * 0x9E3779B97F4A7C15ULL);
}

double Rng::uniform() {
  return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53;
}

uint64_t Rng::derive(uint64_t seed, uint64_t salt) {
  return mix(mix(seed) ^ (salt * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL));
}

at::Tensor apply_repetition_penalty(const at::Tensor& logits, const at::Tensor& seen,
                                    double penalty) {
  if (penalty == 1.0 || !seen.defined()) return logits;
  auto penalised = at::where(logits < 0, logits * penalty, logits / penalty);
  return at::where(seen, penalised, logits);
}

at::Tensor apply_top_k(const at::Tensor& scores, int64_t k) {
  const int64_t vocab = scores.size(-1);
  if (k <= 0 || k >= vocab) return scores;
  auto kth = std::get<0>(scores.topk(k, -1)).narrow(-1, k - 1, 1);
  return scores.masked_fill(scores < kth, kNegInf);
}

at::Tensor apply_top_p(const at::Tensor& scores, double p) {
  if (p >= 1.0) return scores;
  auto sorted = scores.sort(-1, /*descending=*/false);
  auto cumulative = std::get<0>(sorted).softmax(-1).cumsum(-1);
  auto remove = cumulative <= (1.0 - p);
  remove.narrow(-1, scores.size(-1) - 1, 1).fill_(false); // min_tokens_to_keep = 1
  auto mask = remove.scatter(-1, std::get<1>(sorted), remove);
  return scores.masked_fill(mask, kNegInf);
}

at::Tensor sampling_probs(const at::Tensor& logits, const at::Tensor& seen,
                          const SamplingSettings& s) {
  auto scores = apply_repetition_penalty(logits, seen, s.repetition_penalty);
  if (s.temperature <= 0.0) {
    auto best = scores.argmax(-1, /*keepdim=*/true);
    return at::zeros_like(scores).scatter_(-1, best, 1.0);
  }
  if (s.temperature != 1.0) scores = scores / s.temperature;
  scores = apply_top_k(scores, s.top_k);
  scores = apply_top_p(scores, s.top_p);
  return scores.softmax(-1);
}

TopKFirstProbs top_k_first_probs(const at::Tensor& logits, const at::Tensor& seen,
                                 const SamplingSettings& s) {
  auto scores = apply_repetition_penalty(logits, seen, s.repetition_penalty);
  if (s.temperature != 1.0) scores = scores / s.temperature;
  const int64_t vocab = scores.size(-1);
  const int64_t m = std::min(vocab, s.top_k + kTieMargin);
  auto [top, ids] = scores.topk(m, -1); // sorted, largest first
  auto kth = top.narrow(-1, s.top_k - 1, 1);
  TopKFirstProbs out;
  out.ids = ids;
  out.ties_past_candidates = m < vocab
                                 ? top.select(-1, m - 1) == kth.squeeze(-1)
                                 : at::zeros({scores.size(0)}, scores.options().dtype(at::kBool));
  if (s.top_p >= 1.0) {
    // apply_top_k's own mask: exact whatever the ties.
    out.probs = scores.masked_fill(scores < kth, kNegInf).softmax(-1);
    return out;
  }
  // apply_top_p's ascending order over the survivors, equal scores by id (the reference leaves
  // their order to its sort, so a cut inside a group of equal probabilities is not reproducible).
  auto [by_id, id_order] = ids.sort(-1);
  auto survivor = (top >= kth).gather(-1, id_order);
  auto masked = top.gather(-1, id_order).masked_fill(survivor.logical_not(), kNegInf);
  auto [ascending, order] = masked.sort(/*stable=*/true, -1, /*descending=*/false);
  // The non-survivors' -inf add nothing to the softmax, as the vocabulary's do in apply_top_p.
  auto remove = ascending.softmax(-1).cumsum(-1) <= (1.0 - s.top_p);
  remove.narrow(-1, m - 1, 1).fill_(false); // min_tokens_to_keep = 1
  auto kept = ascending.masked_fill(remove, kNegInf);
  // The softmax of the whole vocabulary's masked scores: bit for bit sampling_probs' when the masks
  // agree.
  out.probs =
      at::full_like(scores, kNegInf).scatter_(-1, by_id.gather(-1, order), kept).softmax(-1);
  return out;
}

at::Tensor top_k_entropy(const at::Tensor& scores, int64_t k) {
  auto top = std::get<0>(scores.topk(std::min(k, scores.size(-1)), -1));
  auto p = top.softmax(-1);
  // xlogy: a -inf score (a token the processed distribution removed) adds 0, not NaN.
  return -at::special_xlogy(p, p).sum(-1);
}

at::Tensor draw_from_weights(const at::Tensor& weights, const at::Tensor& uniforms) {
  auto cdf = weights.cumsum(-1);
  auto target = cdf.narrow(-1, cdf.size(-1) - 1, 1) * uniforms.unsqueeze(-1);
  // The first index whose cumulative weight reaches the target always has a non-zero weight.
  auto index = (cdf < target).sum(-1);
  return index.clamp_max(weights.size(-1) - 1);
}

int32_t TokenDistribution::draw(Rng& rng) const {
  double total = 0.0;
  for (float p : probs) total += p;
  double target = rng.uniform() * total, cumulative = 0.0;
  for (size_t i = 0; i < ids.size(); ++i) {
    cumulative += probs[i];
    if (cumulative >= target && probs[i] > 0.0f) return ids[i];
  }
  return ids.back();
}

float TokenDistribution::logprob_of(int32_t id) const {
  auto it = std::find(ids.begin(), ids.end(), id);
  return it == ids.end() ? -std::numeric_limits<float>::infinity() : logprobs[it - ids.begin()];
}

Draws Sampler::draw(const at::Tensor& logits, const at::Tensor& seen,
                    const std::vector<double>& u_token, const std::vector<double>& u_alt) {
  const SamplingSettings& s = settings_;
  const int64_t vocab = logits.size(-1);
  if (vocab > (int64_t{1} << 24)) {
    throw runtime_failure("a vocabulary of " + std::to_string(vocab) +
                              " ids does not fit the sampler's float32 transfer",
                          "rollout sampler");
  }
  logprobs_ = logits.log_softmax(-1);
  // Candidates that hold every non-zero probability travel with the draws, so distribution() needs
  // no transfer of its own: the argmax when greedy, the top-k and its ties otherwise.
  at::Tensor candidates, ties_past;
  if (s.temperature <= 0.0) {
    probs_ = sampling_probs(logits, seen, s);
    candidates = probs_.argmax(-1, /*keepdim=*/true);
  } else if (s.top_k > 0 && s.top_k < vocab) {
    auto fast = top_k_first_probs(logits, seen, s);
    probs_ = fast.probs;
    candidates = fast.ids;
    ties_past = fast.ties_past_candidates;
  } else {
    // Top-k off: top-p's tail (when on) is found only by sorting the vocabulary.
    probs_ = sampling_probs(logits, seen, s);
  }
  Draws d = draw_and_transfer(logits, u_token, u_alt, candidates, ties_past);
  const bool ties_past_any =
      std::find(ties_past_.begin(), ties_past_.end(), true) != ties_past_.end();
  if (s.top_p < 1.0 && ties_past_any) {
    // Top-p saw only part of a row's survivors: the step goes the reference way, at the cost of a
    // second transfer (counted like every other).
    probs_ = sampling_probs(logits, seen, s);
    d = draw_and_transfer(logits, u_token, u_alt, candidates, ties_past);
  }
  return d;
}

Draws Sampler::draw_and_transfer(const at::Tensor& logits, const std::vector<double>& u_token,
                                 const std::vector<double>& u_alt, const at::Tensor& candidates,
                                 const at::Tensor& ties_past) {
  const SamplingSettings& s = settings_;
  auto token = draw_from_weights(probs_, uniforms_on(u_token, logits));

  // The gate's distribution: the model's log-probs, or those after penalty, temperature and
  // truncation (-inf where removed).
  const at::Tensor source = s.processed_entropy ? probs_.log() : logprobs_;
  auto top = source.topk(std::min(s.entropy_top_k, logits.size(-1)), -1);
  auto entropy = top_k_entropy(std::get<0>(top), s.entropy_top_k);

  // Seed §3.2.2: the second branch starts with a token that differs from the sampled one "as
  // measured in the entropy calculation": one of the same top-k, drawn with probability
  // proportional to exp(logprob / T), as the reference draws it from vLLM's top-20 log-probs
  // (whose -inf it reads as -99).
  auto cand_ids = std::get<1>(top);
  auto cand_scores = std::get<0>(top).clamp_min(kRemovedLogprob);
  cand_scores = cand_scores.masked_fill(cand_ids == token.unsqueeze(-1), kNegInf);
  at::Tensor alt_pos;
  if (s.temperature <= 0.0) {
    alt_pos = cand_scores.argmax(-1);
  } else {
    auto weights = (cand_scores / s.temperature).softmax(-1);
    alt_pos = draw_from_weights(weights, uniforms_on(u_alt, logits));
  }
  auto alt = cand_ids.gather(-1, alt_pos.unsqueeze(-1)).squeeze(-1);

  auto token_lp = logprobs_.gather(-1, token.unsqueeze(-1)).squeeze(-1);
  auto alt_lp = logprobs_.gather(-1, alt.unsqueeze(-1)).squeeze(-1);
  auto past = ties_past.defined() ? ties_past.to(at::kFloat) : at::zeros_like(token_lp);
  std::vector<at::Tensor> parts = {
      at::stack({token.to(at::kFloat), alt.to(at::kFloat), token_lp, alt_lp, entropy, past})
          .flatten()};
  if (candidates.defined()) {
    parts.push_back(at::cat({candidates.to(at::kFloat), probs_.gather(-1, candidates),
                             logprobs_.gather(-1, candidates)},
                            -1)
                        .flatten());
  }
  // One host transfer per step for all rows: ids travel as float32, exact below 2^24.
  auto packed = to_host(at::cat(parts));
  const int64_t rows = logits.size(0);
  const float* f = packed.data_ptr<float>();
  Draws d;
  ties_past_.clear();
  for (int64_t r = 0; r < rows; ++r) {
    d.token.push_back(static_cast<int32_t>(f[r]));
    d.alt_token.push_back(static_cast<int32_t>(f[rows + r]));
    ties_past_.push_back(f[5 * rows + r] != 0.0f);
  }
  d.token_logprob.assign(f + 2 * rows, f + 3 * rows);
  d.alt_logprob.assign(f + 3 * rows, f + 4 * rows);
  d.entropy.assign(f + 4 * rows, f + 5 * rows);
  width_ = candidates.defined() ? candidates.size(-1) : 0;
  candidates_.assign(f + 6 * rows, f + packed.numel());
  return d;
}

TokenDistribution Sampler::distribution(int64_t row) const {
  TokenDistribution out;
  if (width_ > 0 && !ties_past_[row]) {
    // The row's candidates (ids, then probs, then log-probs) hold all its non-zero probabilities;
    // kept in id order, as the whole row gives them.
    const float* ids = candidates_.data() + row * 3 * width_;
    const float* p = ids + width_;
    const float* lp = p + width_;
    std::vector<int64_t> held;
    for (int64_t i = 0; i < width_; ++i) {
      if (p[i] != 0.0f) held.push_back(i);
    }
    std::sort(held.begin(), held.end(), [&](int64_t a, int64_t b) { return ids[a] < ids[b]; });
    for (int64_t i : held) {
      out.ids.push_back(static_cast<int32_t>(ids[i]));
      out.probs.push_back(p[i]);
      out.logprobs.push_back(lp[i]);
    }
    return out;
  }
  // One transfer: the row's probabilities and log-probs, filtered on the host.
  auto both = to_host(at::stack({probs_[row], logprobs_[row]}));
  const int64_t vocab = both.size(1);
  const float* p = both.data_ptr<float>();
  const float* lp = p + vocab;
  for (int64_t id = 0; id < vocab; ++id) {
    if (p[id] == 0.0f) continue;
    out.ids.push_back(static_cast<int32_t>(id));
    out.probs.push_back(p[id]);
    out.logprobs.push_back(lp[id]);
  }
  return out;
}

} // namespace treerpo::rollout
