#pragma once
// The two training loops behind `treerpo-train sft` and `treerpo-train train`.
#include <cstdint>
#include <string>

#include "treerpo/config/config.h"
#include "treerpo/train/run.h"

namespace treerpo::train {

struct LoopResult {
  int64_t steps = 0;        // optimiser steps completed in the run directory (all sessions)
  bool interrupted = false; // stopped by SIGINT/SIGTERM after checkpointing
  std::string checkpoint;   // the newest checkpoint folder: the trained model
};

// Supervised fine-tuning on chat-formatted solutions (sft.* keys), loss on assistant tokens only.
LoopResult run_sft(const Config& config, const RunOptions& options);

// RL: grow trees (rollout.*), score leaves, assign credit, packed forward, clipped loss, AdamW
// (train.*).
LoopResult run_rl(const Config& config, const RunOptions& options);

} // namespace treerpo::train
