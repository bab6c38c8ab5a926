#pragma once
// Learning-rate schedule: linear warm-up from 0, then constant or cosine decay to 0 at the last
// step.
#include <cstdint>
#include <string>

namespace treerpo::train {

// `step` counts optimiser steps from 0; `total_steps` is the run's planned number of steps.
double learning_rate(double peak, const std::string& schedule, int64_t warmup_steps, int64_t step,
                     int64_t total_steps);

} // namespace treerpo::train
