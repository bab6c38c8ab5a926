#pragma once
// maj@k voting (Qwen2.5-Math protocol): samples whose extracted answers the checker calls equal
// vote together; a sample without a \boxed{} answer casts no vote.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace treerpo::eval {

struct Vote {
  // Index of the winning cluster's first sample (its answer and verdict stand for the cluster);
  // nullopt when no sample has an answer, which counts as wrong.
  std::optional<size_t> winner;
  int64_t votes = 0;    // samples in the winning cluster
  int64_t clusters = 0; // distinct answers (checker-equivalence classes)
  bool tie = false;     // the winner was drawn among equally large clusters
};

// Clusters `answers` in order: each joins the first cluster whose first answer it equals
// (reward::answers_equal), else starts a new one. The largest cluster wins; a tie is broken by a
// uniform draw seeded by `seed` (same seed, same winner).
Vote majority_vote(const std::vector<std::optional<std::string>>& answers, uint64_t seed);

} // namespace treerpo::eval
