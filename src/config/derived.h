#pragma once
#include <map>
#include <string>

#include "treerpo/config/config.h"

namespace treerpo::config_detail {

// Defaults that follow from other keys, filled in after the file and the --set overrides and
// before validation (`origin` holds the keys the user set):
//   rollout.coverage_min_tokens = rollout.min_segment_tokens + 1 (the seed's X > L_min);
//   grpo / tempo: train.preset (grpo unless train.std_normalize or train.loss_agg is set, then
//   none) sets train.std_normalize and train.loss_agg. A preset contradicting a value the user
//   set is bad input naming both.
void resolve_derived(Config& config, const std::map<std::string, std::string>& origin);

} // namespace treerpo::config_detail
