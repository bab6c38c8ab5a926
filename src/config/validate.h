#pragma once
#include <map>
#include <string>

#include "treerpo/config/config.h"

namespace treerpo::config_detail {

// Checks every rule of every section; `origin` maps explicitly set keys to where they were set, so
// an error points at the line (or --set) the user must change. False for a key that the configured
// rollout shape (or loss aggregation) does not read.
bool key_applies(const Config& config, const std::string& key);

void validate(const Config& config, const std::map<std::string, std::string>& origin);

} // namespace treerpo::config_detail
