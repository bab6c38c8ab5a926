// Validation rules of the run configuration, section by section.
#include "validate.h"

#include <algorithm>
#include <initializer_list>
#include <regex>

#include <fmt/format.h>

#include "treerpo/util/error.h"

namespace treerpo::config_detail {
namespace {

class Rules {
public:
  explicit Rules(const std::map<std::string, std::string>& origin) : origin_(origin) {}

  [[noreturn]] void fail(const std::string& key, const std::string& problem,
                         const std::string& hint = "") const {
    auto it = origin_.find(key);
    std::string where = it == origin_.end() ? "config (default value)" : it->second;
    throw bad_input(fmt::format("{}: {}", key, problem), where, hint);
  }
  void one_of(const std::string& key, const std::string& value,
              std::initializer_list<const char*> allowed) const {
    std::string list;
    for (const char* a : allowed) {
      if (value == a) return;
      list += list.empty() ? a : std::string(", ") + a;
    }
    fail(key, fmt::format("'{}' is not one of: {}", value, list));
  }
  template <class T> void at_least(const std::string& key, T value, T min) const {
    if (value < min) fail(key, fmt::format("must be at least {}, got {}", min, value));
  }
  void positive(const std::string& key, double value) const {
    if (!(value > 0)) fail(key, fmt::format("must be greater than 0, got {}", value));
  }
  void in_range(const std::string& key, double value, double lo, double hi, bool lo_open,
                bool hi_open) const {
    bool ok = (lo_open ? value > lo : value >= lo) && (hi_open ? value < hi : value <= hi);
    if (!ok) {
      fail(key, fmt::format("must be in {}{}, {}{}, got {}", lo_open ? "(" : "[", lo, hi,
                            hi_open ? ")" : "]", value));
    }
  }
  void not_empty(const std::string& key, const std::string& value) const {
    if (value.empty()) fail(key, "must not be empty");
  }

private:
  const std::map<std::string, std::string>& origin_;
};

// Keys read only under some value of another setting (the rollout shape, the loss aggregation).
struct Scope {
  const char* key;
  const char* setting;
  std::vector<std::string> users;
};
const std::vector<Scope>& scopes() {
  static const std::vector<Scope> table = {
      {"rollout.max_depth", "rollout.algorithm", {"treerpo", "fixed"}},
      {"rollout.min_segment_tokens", "rollout.algorithm", {"treerpo"}},
      {"rollout.entropy_threshold", "rollout.algorithm", {"treerpo"}},
      {"rollout.entropy_top_k", "rollout.algorithm", {"treerpo"}},
      {"rollout.delimiters", "rollout.algorithm", {"treerpo"}},
      {"rollout.entropy_source", "rollout.algorithm", {"treerpo"}},
      {"rollout.first_split", "rollout.algorithm", {"treerpo"}},
      {"rollout.coverage", "rollout.algorithm", {"treerpo"}},
      {"rollout.coverage_min_tokens", "rollout.coverage", {"seed"}},
      {"rollout.coverage_min_chars", "rollout.coverage", {"reference"}},
      {"rollout.samples", "rollout.algorithm", {"grpo", "tempo"}},
      {"rollout.segment_tokens", "rollout.algorithm", {"treepo", "fixed"}},
      {"rollout.branches", "rollout.algorithm", {"treepo", "fixed"}},
      {"rollout.max_width", "rollout.algorithm", {"treepo"}},
      {"train.preset", "rollout.algorithm", {"grpo", "tempo"}},
      {"train.std_normalize", "rollout.algorithm", {"grpo", "tempo"}},
      {"train.whiten_advantages", "rollout.algorithm", {"treepo"}},
      {"train.dr_grpo_constant", "train.loss_agg", {"dr-grpo"}},
  };
  return table;
}

const std::string& setting_value(const Config& c, const std::string& setting) {
  if (setting == "train.loss_agg") return c.train.loss_agg;
  if (setting == "rollout.coverage") return c.rollout.coverage;
  return c.rollout.algorithm;
}

const Scope* scope_of(const std::string& key) {
  for (const Scope& s : scopes())
    if (key == s.key) return &s;
  return nullptr;
}

// The scope that excludes `key` under this configuration: its own, or that of the key it hangs
// off (coverage_min_tokens under rollout.algorithm: grpo is excluded by the algorithm).
const Scope* excluding_scope(const Config& c, const std::string& key) {
  const Scope* s = scope_of(key);
  if (s == nullptr) return nullptr;
  if (const Scope* above = excluding_scope(c, s->setting)) return above;
  const std::string& value = setting_value(c, s->setting);
  return std::find(s->users.begin(), s->users.end(), value) == s->users.end() ? s : nullptr;
}

// A key the chosen shape does not read is an error when set, never silently ignored.
void check_scopes(const Rules& r, const Config& c,
                  const std::map<std::string, std::string>& origin) {
  for (const Scope& key : scopes()) {
    if (origin.count(key.key) == 0) continue;
    const Scope* s = excluding_scope(c, key.key);
    if (s == nullptr) continue;
    std::string users;
    for (const auto& u : s->users) users += (users.empty() ? "" : " or ") + u;
    r.fail(key.key,
           fmt::format("is not used when {} is '{}' (only with {})", s->setting,
                       setting_value(c, s->setting), users),
           "remove it");
  }
}

void check_model(const Rules& r, const ModelConfig& m) {
  r.one_of("model.dtype", m.dtype, {"float32", "bfloat16"});
  static const std::regex device(R"(cpu|cuda(:[0-9]+)?)");
  if (!std::regex_match(m.device, device)) {
    r.fail("model.device", fmt::format("'{}' is not cpu, cuda or cuda:N", m.device));
  }
  r.at_least("model.memory_gb", m.memory_gb, 0.0);
  if (m.memory_gb > 0 && m.device == "cpu") {
    r.fail("model.memory_gb", "caps the CUDA caching allocator; model.device is cpu",
           "leave it 0 on the CPU");
  }
}

void check_data(const Rules& r, const DataConfig& d) {
  r.not_empty("data.question_field", d.question_field);
  r.not_empty("data.answer_field", d.answer_field);
}

void check_rollout(const Rules& r, const RolloutConfig& o) {
  const std::string& alg = o.algorithm;
  r.one_of("rollout.algorithm", alg, {"treerpo", "grpo", "tempo", "treepo", "fixed"});
  r.at_least<int64_t>("rollout.max_depth", o.max_depth, 1);
  r.at_least<int64_t>("rollout.min_segment_tokens", o.min_segment_tokens, 0);
  r.at_least("rollout.entropy_threshold", o.entropy_threshold, 0.0);
  r.at_least<int64_t>("rollout.entropy_top_k", o.entropy_top_k, 2);
  if (o.delimiters.empty()) r.fail("rollout.delimiters", "must list at least one delimiter");
  for (const auto& d : o.delimiters) {
    if (d.empty()) r.fail("rollout.delimiters", "contains an empty delimiter");
  }
  r.one_of("rollout.entropy_source", o.entropy_source, {"raw", "processed"});
  r.one_of("rollout.first_split", o.first_split, {"forced", "sampled"});
  r.one_of("rollout.coverage", o.coverage, {"seed", "reference", "off"});
  // The seed's coverage rule: a leaf of length X > L_min gets an extra sibling.
  if (o.coverage_min_tokens <= o.min_segment_tokens)
    r.fail("rollout.coverage_min_tokens",
           fmt::format("must be greater than rollout.min_segment_tokens ({}), got {}",
                       o.min_segment_tokens, o.coverage_min_tokens),
           "leave it unset (min_segment_tokens + 1) or raise it");
  r.at_least<int64_t>("rollout.coverage_min_chars", o.coverage_min_chars, 0);
  r.at_least<int64_t>("rollout.samples", o.samples, 2);
  r.at_least<int64_t>("rollout.segment_tokens", o.segment_tokens, 1);
  r.at_least<int64_t>("rollout.branches", o.branches, 2);
  r.at_least<int64_t>("rollout.max_width", o.max_width, o.branches);
  r.at_least<int64_t>("rollout.max_node_tokens", o.max_node_tokens, 1);
  r.at_least<int64_t>("rollout.max_answer_tokens", o.max_answer_tokens, 1);
  r.at_least("rollout.temperature", o.temperature, 0.0);
  r.in_range("rollout.top_p", o.top_p, 0.0, 1.0, true, false);
  r.at_least<int64_t>("rollout.top_k", o.top_k, 0);
  // seed §3.2.2: the second branch needs a different token from the top-k candidates.
  if (alg == "treerpo" && o.top_k == 1)
    r.fail("rollout.top_k", "must be 0 (off) or at least 2 for treerpo");
  r.positive("rollout.repetition_penalty", o.repetition_penalty);
  r.at_least<int64_t>("rollout.max_live_branches", o.max_live_branches, 2);
  r.at_least<int64_t>("rollout.kv_block_tokens", o.kv_block_tokens, 1);
  r.one_of("rollout.decode_attention", o.decode_attention, {"torch", "paged_kernel"});
  r.at_least<int64_t>("rollout.prompts_in_flight", o.prompts_in_flight, 1);
  // One branch's whole context must fit (the engine waits and preempts for everything else).
  if (o.kv_cache_tokens != 0 && o.kv_cache_tokens < o.max_answer_tokens + o.kv_block_tokens)
    r.fail("rollout.kv_cache_tokens",
           fmt::format("must be 0 (a dense cache's size) or hold one answer of "
                       "rollout.max_answer_tokens ({}) plus a block ({}), got {}",
                       o.max_answer_tokens, o.kv_block_tokens, o.kv_cache_tokens),
           "raise it or leave it 0");
  r.in_range("rollout.kv_cache_memory_fraction", o.kv_cache_memory_fraction, 0.0, 1.0, false, true);
  if (o.kv_cache_tokens != 0 && o.kv_cache_memory_fraction != 0)
    r.fail("rollout.kv_cache_memory_fraction",
           fmt::format("sizes the KV pool, and so does rollout.kv_cache_tokens ({})",
                       o.kv_cache_tokens),
           "set one of the two, the other 0");
}

void check_train(const Rules& r, const TrainConfig& t) {
  r.positive("train.lr", t.lr);
  r.at_least<int64_t>("train.prompts_per_step", t.prompts_per_step, 1);
  r.in_range("train.clip_eps", t.clip_eps, 0.0, 1.0, true, true);
  r.positive("train.clip_eps_high", t.clip_eps_high);
  r.one_of("train.preset", t.preset, {"grpo", "dr-grpo", "dapo", "none"});
  r.one_of("train.loss_agg", t.loss_agg,
           {"group-token-mean", "token-mean", "seq-mean-token-mean", "dr-grpo"});
  r.positive("train.dr_grpo_constant", t.dr_grpo_constant);
  r.at_least<int64_t>("train.steps", t.steps, 0);
  r.at_least<int64_t>("train.epochs", t.epochs, 1);
  r.at_least<int64_t>("train.token_budget", t.token_budget, 0);
  r.at_least<int64_t>("train.seed", t.seed, 0);
  r.at_least("train.weight_decay", t.weight_decay, 0.0);
  r.in_range("train.adam_beta1", t.adam_beta1, 0.0, 1.0, false, true);
  r.in_range("train.adam_beta2", t.adam_beta2, 0.0, 1.0, false, true);
  r.positive("train.adam_eps", t.adam_eps);
  r.at_least<int64_t>("train.warmup_steps", t.warmup_steps, 0);
  r.one_of("train.lr_schedule", t.lr_schedule, {"constant", "cosine"});
  r.one_of("train.optimizer", t.optimizer, {"adamw", "adamw-bf16"});
  r.at_least("train.max_grad_norm", t.max_grad_norm, 0.0);
  r.at_least<int64_t>("train.grad_accum", t.grad_accum, 1);
  r.at_least("train.kl_coef", t.kl_coef, 0.0);
  r.at_least<int64_t>("train.max_bad_steps", t.max_bad_steps, 1);
  r.at_least<int64_t>("train.max_tokens_per_forward", t.max_tokens_per_forward, 0);
}

// Per-sequence aggregations average over samples (root-to-leaf paths); treerpo and fixed credit
// nodes, not samples. Dr-GRPO drops the std by definition.
void check_loss_shape(const Rules& r, const Config& c) {
  const std::string& agg = c.train.loss_agg;
  const std::string& alg = c.rollout.algorithm;
  const bool per_sequence = agg == "seq-mean-token-mean" || agg == "dr-grpo";
  if (per_sequence && (alg == "treerpo" || alg == "fixed"))
    r.fail("train.loss_agg",
           fmt::format("'{}' averages over sampled sequences, but rollout.algorithm '{}' credits "
                       "tree nodes",
                       agg, alg),
           "use group-token-mean or token-mean, or a sample shape (grpo, tempo, treepo)");
  if (agg == "dr-grpo" && c.train.std_normalize)
    r.fail("train.std_normalize", "Dr-GRPO drops the std normalisation by definition",
           "remove train.std_normalize or use train.preset: grpo");
}

void check_sft(const Rules& r, const SftConfig& s) {
  r.not_empty("sft.question_field", s.question_field);
  r.not_empty("sft.solution_field", s.solution_field);
  r.positive("sft.lr", s.lr);
  r.one_of("sft.lr_schedule", s.lr_schedule, {"constant", "cosine"});
  r.at_least<int64_t>("sft.epochs", s.epochs, 1);
  r.at_least<int64_t>("sft.steps", s.steps, 0);
  r.at_least<int64_t>("sft.batch_size", s.batch_size, 1);
}

void check_checkpoint(const Rules& r, const CheckpointConfig& c) {
  r.not_empty("checkpoint.dir", c.dir);
  r.at_least<int64_t>("checkpoint.every", c.every, 0);
  r.at_least<int64_t>("checkpoint.keep", c.keep, 1);
}

void check_eval(const Rules& r, const EvalConfig& e) {
  r.at_least<int64_t>("eval.every", e.every, 0);
  if (e.every > 0 && e.data.empty()) {
    r.fail("eval.every", "periodic evaluation needs eval.data", "set eval.data to a JSONL file");
  }
  r.at_least<int64_t>("eval.limit", e.limit, 0);
  if (e.maj == 1 || e.maj < 0)
    r.fail("eval.maj", fmt::format("must be 0 (off) or at least 2, got {}", e.maj));
  r.at_least<int64_t>("eval.max_new_tokens", e.max_new_tokens, 1);
  r.at_least<int64_t>("eval.batch", e.batch, 1);
}

void check_log(const Rules& r, const LogConfig& l) {
  r.one_of("log.level", l.level, {"debug", "info", "warn"});
  r.at_least<int64_t>("log.render_trees_every", l.render_trees_every, 0);
}

void check_distributed(const Rules& r, const DistributedConfig& d) {
  r.at_least<int64_t>("distributed.timeout_s", d.timeout_s, 1);
}

} // namespace

bool key_applies(const Config& config, const std::string& key) {
  return excluding_scope(config, key) == nullptr;
}

void validate(const Config& config, const std::map<std::string, std::string>& origin) {
  Rules rules(origin);
  check_model(rules, config.model);
  check_data(rules, config.data);
  check_rollout(rules, config.rollout);
  check_train(rules, config.train);
  check_loss_shape(rules, config);
  // Autocast casts float32 weights down for the forward; over bfloat16 weights it would do nothing.
  if (config.train.autocast && config.model.dtype != "float32") {
    rules.fail("train.autocast",
               "casts float32 weights to bfloat16 for the forward, but model.dtype is " +
                   config.model.dtype,
               "set model.dtype: float32 (the master weights) or train.autocast: false");
  }
  // CUDA graphs record the paged kernel's decode step on a CUDA device.
  if (config.rollout.cuda_graphs && config.rollout.decode_attention != "paged_kernel") {
    rules.fail("rollout.cuda_graphs",
               "records the paged kernel's decode steps, but rollout.decode_attention is " +
                   config.rollout.decode_attention,
               "set rollout.decode_attention: paged_kernel or rollout.cuda_graphs: false");
  }
  if (config.rollout.cuda_graphs && config.model.device.rfind("cuda", 0) != 0) {
    rules.fail("rollout.cuda_graphs",
               "needs a CUDA device, but model.device is " + config.model.device,
               "set rollout.cuda_graphs: false");
  }
  check_sft(rules, config.sft);
  check_checkpoint(rules, config.checkpoint);
  check_eval(rules, config.eval);
  check_log(rules, config.log);
  check_distributed(rules, config.distributed);
  check_scopes(rules, config, origin);
}

} // namespace treerpo::config_detail
