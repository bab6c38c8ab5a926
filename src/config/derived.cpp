// Keys whose default follows from other keys: the coverage length and the GRPO-family presets.
#include "derived.h"

#include <fmt/format.h>

#include "treerpo/util/error.h"

namespace treerpo::config_detail {
namespace {

// The presets of sample-group training, named as TRL's GRPOConfig.loss_type names them (with
// scale_rewards "group" for the std-normalised ones); verl's names for the same aggregation in
// the comments.
struct Preset {
  const char* name;
  bool std_normalize;
  const char* loss_agg;
};
constexpr Preset kPresets[] = {
    // DeepSeekMath GRPO: (R - mean) / std, each sequence's token mean, then the mean over
    // sequences (verl: seq-mean-token-mean).
    {"grpo", true, "seq-mean-token-mean"},
    // Dr-GRPO (Liu et al. 2025): R - mean, each sequence's token sum / a constant, then the mean
    // over sequences (verl: seq-mean-token-sum-norm).
    {"dr-grpo", false, "dr-grpo"},
    // DAPO's token-level loss over GRPO advantages (verl: token-mean); DAPO's other parts are
    // their own keys: train.clip_eps_high, train.filter_zero_signal.
    {"dapo", true, "token-mean"},
};

std::string where_set(const std::map<std::string, std::string>& origin, const std::string& key) {
  auto it = origin.find(key);
  return it == origin.end() ? "config (default value)" : it->second;
}

void resolve_preset(Config& c, const std::map<std::string, std::string>& origin) {
  const bool sample_groups = c.rollout.algorithm == "grpo" || c.rollout.algorithm == "tempo";
  if (!sample_groups) return;
  const bool std_set = origin.count("train.std_normalize") > 0;
  const bool agg_set = origin.count("train.loss_agg") > 0;
  if (origin.count("train.preset") == 0) c.train.preset = std_set || agg_set ? "none" : "grpo";
  for (const Preset& p : kPresets) {
    if (c.train.preset != p.name) continue;
    if (std_set && c.train.std_normalize != p.std_normalize)
      throw bad_input(
          fmt::format("train.std_normalize: {} contradicts train.preset: {} ({}, at {})",
                      c.train.std_normalize, p.name, p.std_normalize,
                      where_set(origin, "train.preset")),
          where_set(origin, "train.std_normalize"),
          "remove one of the two, or use train.preset: none");
    if (agg_set && c.train.loss_agg != p.loss_agg)
      throw bad_input(
          fmt::format("train.loss_agg: '{}' contradicts train.preset: {} ('{}', at {})",
                      c.train.loss_agg, p.name, p.loss_agg, where_set(origin, "train.preset")),
          where_set(origin, "train.loss_agg"), "remove one of the two, or use train.preset: none");
    c.train.std_normalize = p.std_normalize;
    c.train.loss_agg = p.loss_agg;
  }
}

} // namespace

void resolve_derived(Config& config, const std::map<std::string, std::string>& origin) {
  if (origin.count("rollout.coverage_min_tokens") == 0)
    config.rollout.coverage_min_tokens = config.rollout.min_segment_tokens + 1;
  resolve_preset(config, origin);
}

} // namespace treerpo::config_detail
