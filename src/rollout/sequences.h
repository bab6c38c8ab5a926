#pragma once
// The rollout engine's KV sequences: handles of the model's cache, reference-counted (a split
// parks its parent's sequence while children wait to fork it), and, under a repetition penalty,
// the set of ids each sequence's context holds, a device bool row per handle.
#include <cstdint>
#include <set>
#include <vector>

#include <ATen/ATen.h>

#include "treerpo/rollout/engine.h"

namespace treerpo::rollout {

class Sequences {
public:
  // `track_seen`: keep each sequence's id set (rollout.repetition_penalty != 1); `rows` handles
  // to start with (more are added as needed).
  Sequences(BranchModel& model, bool track_seen, int64_t rows);

  // A new handle (the smallest unused) with one reference and an empty id set.
  int64_t take();
  void ref(int64_t seq) { refs_[static_cast<size_t>(seq)] += 1; }
  // Drops a reference; the last one releases the model's sequence and frees the handle.
  void unref(int64_t seq);
  bool sole_holder(int64_t seq) const { return refs_[static_cast<size_t>(seq)] == 1; }
  // A new handle continuing from `src` (the model shares its blocks; the id set is copied); the
  // reference the caller held on `src` passes to the new handle.
  int64_t fork(int64_t src);

  bool tracks_seen() const { return seen_.defined(); }
  // Adds ids to one sequence's set.
  void mark_seen(int64_t seq, const std::vector<int32_t>& ids);
  // Adds token[i] to seqs[i]'s set, one upload.
  void mark_seen(const std::vector<int64_t>& seqs, const std::vector<int64_t>& tokens);
  // The sets of `seqs`, rows in that order [seqs, vocab]; undefined when not tracked.
  at::Tensor seen_rows(const std::vector<int64_t>& seqs) const;

private:
  BranchModel& model_;
  std::vector<int32_t> refs_; // per handle
  std::set<int64_t> free_;    // handles to reuse
  at::Tensor seen_;           // [handles, vocab] bool
};

} // namespace treerpo::rollout
