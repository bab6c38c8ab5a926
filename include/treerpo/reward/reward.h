#pragma once
// Rewards: response text + gold answer -> score. The RL loop scores every leaf through this
// interface, so other deterministic checkers (unit tests for code, exact match) plug in without
// touching the loop.
#include <string_view>

#include "treerpo/reward/checker.h"

namespace treerpo::reward {

class Reward {
public:
  virtual ~Reward() = default;
  // Must be thread-safe and deterministic: the same inputs give the same score on every call.
  virtual double score(std::string_view response, std::string_view gold) const = 0;
};

// 1.0 when the response's \boxed{} answer equals the gold answer (checker.h), else 0.0.
class MathReward : public Reward {
public:
  explicit MathReward(ExtractOptions options = {}) : options_(options) {}
  double score(std::string_view response, std::string_view gold) const override {
    return check(response, gold, options_).correct ? 1.0 : 0.0;
  }

private:
  ExtractOptions options_;
};

} // namespace treerpo::reward
