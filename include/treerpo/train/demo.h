#pragma once
// The demo's starting point: the synthetic task's data, a small byte-level BPE tokenizer fitted to
// it, and a randomly initialised tiny Qwen2 — everything `scripts/demo.sh` trains from, made in
// seconds.
#include <cstdint>
#include <set>
#include <string>

#include "treerpo/model/config.h"

namespace treerpo::train {

struct DemoOptions {
  int64_t train_problems = 4000;
  int64_t test_problems = 200;
  uint64_t seed = 1;
  int64_t hidden_size = 128;
  int64_t layers = 4;
  // A built-in model shape (model::Qwen2Config::builtin) instead of the tiny one, with random
  // bf16 weights: the data and tokenizer of the demo under a real model's size, for memory and
  // speed checks. Its vocabulary must hold the tokenizer's.
  std::string shape;
  double sft_slip_rate = 0.6; // share of SFT solutions with a step off by one
  // Which step slips, every later step then computed from the wrong value: the last (the demo's
  // task); any step with equal chance (an error at any depth of the tree, at random); or every
  // step the question words "finds N more" (an error at any depth that imitation learns as a rule:
  // solutions without such a step never slip).
  enum class SlipStep { Last, Any, Finds };
  SlipStep sft_slip_step = SlipStep::Last;
};

// The careless teacher's version of a synthetic solution ("3-2=1\n1+7=8\nThe answer is
// \boxed{8}."): the step lines in `steps` (0-based) one too high, each step after the first of
// them computed from the wrong value before it, and the answer line following. bad_input when a
// step is not one of its step lines.
std::string slipped_solution(const std::string& solution, const std::set<size_t>& steps);

// The steps (0-based) a synthetic question words "finds N more": its sentences after the first
// ("Ann has 3 apples.") are its steps, in order.
std::set<size_t> finds_steps(const std::string& question);

// The demo's Qwen2 shape for a vocabulary of `vocab_size` ids: tiny, or options.shape (bad_input
// when that shape's vocabulary is smaller).
model::Qwen2Config demo_model_config(int64_t vocab_size, const DemoOptions& options);

// Writes DIR/data/{train,test}.jsonl (correct solutions and gold answers), DIR/data/sft.jsonl (the
// train problems with `sft_slip_rate` of the solutions slipping by one at `sft_slip_step`), and
// DIR/model/ (tokenizer.json, tokenizer_config.json, config.json, model.safetensors). The
// tokenizer's merges spell out every word of the task and the chat template, so a problem costs a
// few dozen tokens, not a few hundred bytes.
void write_demo_workspace(const std::string& dir, const DemoOptions& options);

} // namespace treerpo::train
