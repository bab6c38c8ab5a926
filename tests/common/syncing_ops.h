#pragma once
// The ATen operators that make the host wait for a CUDA device whatever their arguments, because
// the host needs their result's size or value (an .item(), a nonzero and what calls it: a
// boolean-mask index, a masked_select; a unique, a bincount, a repeat_interleave without its output
// size, an equal), recorded by name while a recorder lives, through LibTorch's RecordFunction on
// the calling thread. Each wait counts once, under the outermost of these operators it runs in: an
// .item() is aten::item (not also the _local_scalar_dense inside it), an index by a mask is the
// nonzero it calls. On the CPU they cost nothing, so a test run there shows what a code path would
// synchronise on a GPU.
//
// Copies between devices are not among them: on the CPU a copy to the host cannot be told from a
// dtype cast (the rollout counts its own device-to-host copies, util/host_transfer.h), and on CUDA
// `bench rollout` counts every synchronisation LibTorch makes (util/cuda_syncs.h).
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <ATen/record_function.h>

namespace treerpo::testing {

class SyncingOpRecorder {
public:
  // The outermost recorder of a thread registers the callback; it counts for every recorder alive.
  SyncingOpRecorder() : previous_(active()) {
    active() = this;
    if (previous_ == nullptr)
      handle_ = at::addThreadLocalCallback(at::RecordFunctionCallback(&on_start, &on_end));
  }
  ~SyncingOpRecorder() {
    if (previous_ == nullptr) at::removeCallback(handle_);
    active() = previous_;
  }
  SyncingOpRecorder(const SyncingOpRecorder&) = delete;
  SyncingOpRecorder& operator=(const SyncingOpRecorder&) = delete;

  // Waits seen, by the name of the outermost syncing operator each ran in.
  const std::map<std::string, int64_t>& calls() const { return calls_; }
  int64_t total() const {
    int64_t n = 0;
    for (const auto& [name, count] : calls_) n += count;
    return n;
  }

  static const std::set<std::string>& syncing() {
    static const std::set<std::string> names = {"aten::_local_scalar_dense",
                                                "aten::is_nonzero",
                                                "aten::item",
                                                "aten::nonzero",
                                                "aten::nonzero_numpy",
                                                "aten::argwhere",
                                                "aten::masked_select",
                                                "aten::_unique",
                                                "aten::_unique2",
                                                "aten::unique_dim",
                                                "aten::unique_consecutive",
                                                "aten::unique_dim_consecutive",
                                                "aten::bincount",
                                                "aten::repeat_interleave",
                                                "aten::equal",
                                                "aten::allclose"};
    return names;
  }

private:
  static SyncingOpRecorder*& active() {
    thread_local SyncingOpRecorder* recorder = nullptr;
    return recorder;
  }
  // Syncing operators entered and not yet left on this thread.
  static int& depth() {
    thread_local int inside = 0;
    return inside;
  }
  struct InsideSyncingOp : at::ObserverContext {};
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    const std::string name = fn.name();
    if (syncing().count(name) == 0) return nullptr;
    if (depth()++ == 0) {
      for (SyncingOpRecorder* r = active(); r != nullptr; r = r->previous_) ++r->calls_[name];
    }
    return std::make_unique<InsideSyncingOp>(); // tells on_end to leave
  }
  static void on_end(const at::RecordFunction&, at::ObserverContext* context) {
    if (context != nullptr) --depth();
  }

  SyncingOpRecorder* previous_;
  at::CallbackHandle handle_{};
  std::map<std::string, int64_t> calls_;
};

} // namespace treerpo::testing
