#pragma once
// Every configuration key with its full name, in file order. One list serves loading, --set,
// unknown-key detection and writing the effective config, so a new key is added in exactly one
// place.
#include "treerpo/config/config.h"

namespace treerpo::config_detail {

// `visit(name, field)` for every field; ConfigT is Config or const Config.
template <class ConfigT, class Visit> void for_each_field(ConfigT& c, Visit&& visit) {
  visit("model.path", c.model.path);
  visit("model.tokenizer", c.model.tokenizer);
  visit("model.dtype", c.model.dtype);
  visit("model.device", c.model.device);
  visit("model.memory_gb", c.model.memory_gb);

  visit("data.train", c.data.train);
  visit("data.question_field", c.data.question_field);
  visit("data.answer_field", c.data.answer_field);
  visit("data.system_prompt", c.data.system_prompt);
  visit("data.shuffle", c.data.shuffle);

  visit("rollout.algorithm", c.rollout.algorithm);
  visit("rollout.max_depth", c.rollout.max_depth);
  visit("rollout.min_segment_tokens", c.rollout.min_segment_tokens);
  visit("rollout.entropy_threshold", c.rollout.entropy_threshold);
  visit("rollout.entropy_top_k", c.rollout.entropy_top_k);
  visit("rollout.entropy_source", c.rollout.entropy_source);
  visit("rollout.first_split", c.rollout.first_split);
  visit("rollout.delimiters", c.rollout.delimiters);
  visit("rollout.coverage", c.rollout.coverage);
  visit("rollout.coverage_min_tokens", c.rollout.coverage_min_tokens);
  visit("rollout.coverage_min_chars", c.rollout.coverage_min_chars);
  visit("rollout.samples", c.rollout.samples);
  visit("rollout.segment_tokens", c.rollout.segment_tokens);
  visit("rollout.branches", c.rollout.branches);
  visit("rollout.max_width", c.rollout.max_width);
  visit("rollout.max_node_tokens", c.rollout.max_node_tokens);
  visit("rollout.max_answer_tokens", c.rollout.max_answer_tokens);
  visit("rollout.temperature", c.rollout.temperature);
  visit("rollout.top_p", c.rollout.top_p);
  visit("rollout.top_k", c.rollout.top_k);
  visit("rollout.repetition_penalty", c.rollout.repetition_penalty);
  visit("rollout.max_live_branches", c.rollout.max_live_branches);
  visit("rollout.kv_cache_tokens", c.rollout.kv_cache_tokens);
  visit("rollout.kv_cache_memory_fraction", c.rollout.kv_cache_memory_fraction);
  visit("rollout.kv_block_tokens", c.rollout.kv_block_tokens);
  visit("rollout.decode_attention", c.rollout.decode_attention);
  visit("rollout.cuda_graphs", c.rollout.cuda_graphs);
  visit("rollout.prompts_in_flight", c.rollout.prompts_in_flight);

  visit("train.lr", c.train.lr);
  visit("train.optimizer", c.train.optimizer);
  visit("train.prompts_per_step", c.train.prompts_per_step);
  visit("train.clip_eps", c.train.clip_eps);
  visit("train.clip_eps_high", c.train.clip_eps_high);
  visit("train.preset", c.train.preset);
  visit("train.loss_agg", c.train.loss_agg);
  visit("train.dr_grpo_constant", c.train.dr_grpo_constant);
  visit("train.steps", c.train.steps);
  visit("train.epochs", c.train.epochs);
  visit("train.token_budget", c.train.token_budget);
  visit("train.seed", c.train.seed);
  visit("train.weight_decay", c.train.weight_decay);
  visit("train.adam_beta1", c.train.adam_beta1);
  visit("train.adam_beta2", c.train.adam_beta2);
  visit("train.adam_eps", c.train.adam_eps);
  visit("train.warmup_steps", c.train.warmup_steps);
  visit("train.lr_schedule", c.train.lr_schedule);
  visit("train.max_grad_norm", c.train.max_grad_norm);
  visit("train.grad_accum", c.train.grad_accum);
  visit("train.gradient_checkpointing", c.train.gradient_checkpointing);
  visit("train.max_tokens_per_forward", c.train.max_tokens_per_forward);
  visit("train.autocast", c.train.autocast);
  visit("train.kl_coef", c.train.kl_coef);
  visit("train.std_normalize", c.train.std_normalize);
  visit("train.whiten_advantages", c.train.whiten_advantages);
  visit("train.filter_zero_signal", c.train.filter_zero_signal);
  visit("train.max_bad_steps", c.train.max_bad_steps);

  visit("sft.data", c.sft.data);
  visit("sft.question_field", c.sft.question_field);
  visit("sft.solution_field", c.sft.solution_field);
  visit("sft.lr", c.sft.lr);
  visit("sft.lr_schedule", c.sft.lr_schedule);
  visit("sft.epochs", c.sft.epochs);
  visit("sft.steps", c.sft.steps);
  visit("sft.batch_size", c.sft.batch_size);

  visit("checkpoint.dir", c.checkpoint.dir);
  visit("checkpoint.every", c.checkpoint.every);
  visit("checkpoint.keep", c.checkpoint.keep);

  visit("eval.data", c.eval.data);
  visit("eval.every", c.eval.every);
  visit("eval.limit", c.eval.limit);
  visit("eval.maj", c.eval.maj);
  visit("eval.max_new_tokens", c.eval.max_new_tokens);
  visit("eval.batch", c.eval.batch);

  visit("log.level", c.log.level);
  visit("log.tensorboard", c.log.tensorboard);
  visit("log.render_trees_every", c.log.render_trees_every);

  visit("distributed.timeout_s", c.distributed.timeout_s);
}

} // namespace treerpo::config_detail
