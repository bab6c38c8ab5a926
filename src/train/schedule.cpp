#include "treerpo/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace treerpo::train {

double learning_rate(double peak, const std::string& schedule, int64_t warmup_steps, int64_t step,
                     int64_t total_steps) {
  // Step s of a warm-up of W steps trains at peak * (s + 1) / W, so the first step is not wasted at
  // lr 0.
  if (step < warmup_steps)
    return peak * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (schedule != "cosine") return peak;
  int64_t decay_steps = std::max<int64_t>(1, total_steps - warmup_steps);
  double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / decay_steps);
  return peak * 0.5 * (1.0 + std::cos(M_PI * progress));
}

} // namespace treerpo::train
