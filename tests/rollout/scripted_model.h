#pragma once
// A BranchModel whose next-token logits are a scripted function of the slot's context ids, with
// the KV-slot bookkeeping of the real cache (fork copies, release empties), and a one-string-per-id
// text stream. Lets the rollout rules be tested on controlled distributions.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "treerpo/rollout/engine.h"

namespace treerpo::rollout::testing {

// Vocabulary of the scripted tests.
enum : int32_t { kA = 0, kB = 1, kDot = 2, kX = 3, kY = 4, kEos = 5, kZ = 6, kW = 7, kVocab = 8 };
inline const char* kPieces[kVocab] = {"a", "b", ".", "x", "y", "", "z", "w"};

// Logits where `token` gets `top` and every other id 0: with top_p 0.5 the draw is always `token`,
// and `top` sets the entropy (2.0 -> about 1.64 nats over 8 ids; 20.0 -> about 0).
inline std::vector<float> peaked(int32_t token, float top) {
  std::vector<float> l(kVocab, 0.0f);
  l[token] = top;
  return l;
}

class ScriptedModel : public BranchModel {
public:
  using Script = std::function<std::vector<float>(const std::vector<int32_t>& context)>;
  ScriptedModel(int64_t slots, Script script) : slots_(slots), script_(std::move(script)) {}
  int64_t max_live_branches() const override { return slots_; }
  int64_t vocab_size() const override { return kVocab; }
  at::Device device() const override { return at::kCPU; }
  at::Tensor prefill(const std::vector<int64_t>& slots,
                     const std::vector<std::vector<int32_t>>& prompts) override {
    for (size_t i = 0; i < slots.size(); ++i) cache_[slots[i]] = prompts[i];
    return rows(slots);
  }
  at::Tensor decode(const std::vector<int64_t>& slots,
                    const std::vector<int32_t>& tokens) override {
    for (size_t i = 0; i < slots.size(); ++i) cache_[slots[i]].push_back(tokens[i]);
    return rows(slots);
  }
  void fork(int64_t src, int64_t dst) override { cache_[dst] = cache_[src]; }
  void release(int64_t slot) override { cache_.erase(slot); }
  int64_t peak_slots() const { return peak_; }

private:
  at::Tensor rows(const std::vector<int64_t>& slots) {
    peak_ = std::max<int64_t>(peak_, static_cast<int64_t>(cache_.size()));
    auto out = at::empty({static_cast<int64_t>(slots.size()), kVocab}, at::kFloat);
    for (size_t i = 0; i < slots.size(); ++i) {
      auto l = script_(cache_[slots[i]]);
      for (int32_t v = 0; v < kVocab; ++v) out[i][v] = l[v];
    }
    return out;
  }
  int64_t slots_;
  Script script_;
  std::map<int64_t, std::vector<int32_t>> cache_;
  int64_t peak_ = 0;
};

class PieceStream : public TextStream {
public:
  std::string push(int32_t id) override { return kPieces[id]; }
  std::unique_ptr<TextStream> clone() const override {
    return std::make_unique<PieceStream>(*this);
  }
};

inline TextStreamFactory piece_streams() {
  return [] { return std::make_unique<PieceStream>(); };
}

} // namespace treerpo::rollout::testing
