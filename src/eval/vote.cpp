#include "treerpo/eval/vote.h"

#include "treerpo/reward/checker.h"
#include "treerpo/rollout/sampler.h"

namespace treerpo::eval {

Vote majority_vote(const std::vector<std::optional<std::string>>& answers, uint64_t seed) {
  std::vector<size_t> first; // each cluster's first sample
  std::vector<int64_t> size; // each cluster's votes
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!answers[i]) continue; // no \boxed{}: no vote (Qwen2.5-Math protocol)
    size_t c = 0;
    while (c < first.size() && !reward::answers_equal(*answers[i], *answers[first[c]])) ++c;
    if (c == first.size()) {
      first.push_back(i);
      size.push_back(0);
    }
    size[c] += 1;
  }
  Vote vote;
  vote.clusters = static_cast<int64_t>(first.size());
  if (first.empty()) return vote;
  std::vector<size_t> best;
  for (size_t c = 0; c < first.size(); ++c) {
    if (size[c] > vote.votes) vote.votes = size[c], best.clear();
    if (size[c] == vote.votes) best.push_back(c);
  }
  vote.tie = best.size() > 1;
  size_t pick = 0;
  if (vote.tie) {
    rollout::Rng rng(seed);
    pick = static_cast<size_t>(rng.uniform() * static_cast<double>(best.size()));
    if (pick >= best.size()) pick = best.size() - 1;
  }
  vote.winner = first[best[pick]];
  return vote;
}

} // namespace treerpo::eval
