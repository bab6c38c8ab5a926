#include "sequences.h"

#include "treerpo/util/host_transfer.h"

namespace treerpo::rollout {

Sequences::Sequences(BranchModel& model, bool track_seen, int64_t rows) : model_(model) {
  if (track_seen) {
    seen_ = at::zeros({rows, model.vocab_size()},
                      at::TensorOptions().dtype(at::kBool).device(model.device()));
  }
}

int64_t Sequences::take() {
  int64_t seq;
  if (!free_.empty()) {
    seq = *free_.begin();
    free_.erase(free_.begin());
  } else {
    seq = static_cast<int64_t>(refs_.size());
    refs_.push_back(0);
  }
  refs_[static_cast<size_t>(seq)] = 1;
  if (seen_.defined()) {
    if (seq >= seen_.size(0)) seen_ = at::cat({seen_, at::zeros_like(seen_)}, 0);
    seen_[seq].fill_(false);
  }
  return seq;
}

void Sequences::unref(int64_t seq) {
  if (--refs_[static_cast<size_t>(seq)] > 0) return;
  model_.release(seq);
  free_.insert(seq);
}

int64_t Sequences::fork(int64_t src) {
  const int64_t seq = take();
  model_.fork(src, seq);
  if (seen_.defined()) seen_[seq].copy_(seen_[src]);
  unref(src);
  return seq;
}

void Sequences::mark_seen(int64_t seq, const std::vector<int32_t>& ids) {
  if (!seen_.defined() || ids.empty()) return;
  seen_[seq].index_fill_(0, to_device(std::vector<int64_t>(ids.begin(), ids.end()), seen_.device()),
                         true);
}

void Sequences::mark_seen(const std::vector<int64_t>& seqs, const std::vector<int64_t>& tokens) {
  if (!seen_.defined() || seqs.empty()) return;
  // Handles then tokens, one upload.
  const auto n = static_cast<int64_t>(seqs.size());
  std::vector<int64_t> both = seqs;
  both.insert(both.end(), tokens.begin(), tokens.end());
  const at::Tensor up = to_device(both, seen_.device());
  seen_.index_put_({up.narrow(0, 0, n), up.narrow(0, n, n)}, true);
}

at::Tensor Sequences::seen_rows(const std::vector<int64_t>& seqs) const {
  if (!seen_.defined()) return {};
  return seen_.index_select(0, to_device(seqs, seen_.device()));
}

} // namespace treerpo::rollout
