#pragma once
// The run configuration: one plain struct per YAML section, defaults equal to the TreeRPO seed
// recipe (DESIGN §4, §6). Modules read their own section; config.cpp loads, overrides and
// validates.
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace treerpo {

struct ModelConfig {
  std::string path;               // Hugging Face model folder
  std::string tokenizer;          // tokenizer folder/file; empty = model.path
  std::string dtype = "bfloat16"; // float32 | bfloat16
  std::string device = "cuda";    // cpu | cuda | cuda:N
  // The most GiB the CUDA caching allocator may hold on the device (0: all of it): a recipe for a
  // smaller card checked on a larger one.
  double memory_gb = 0;
};

struct DataConfig {
  std::string train;                       // JSONL, one problem a line
  std::string question_field = "question"; // GSM8K style by default
  std::string answer_field = "answer";
  std::string system_prompt =
      "Please reason step by step, and put your final answer within \\boxed{}.";
  bool shuffle = true;
};

struct RolloutConfig {
  std::string algorithm = "treerpo"; // treerpo | grpo | tempo | treepo | fixed
  // treerpo (and fixed: the depth D)
  int64_t max_depth = 7;
  int64_t min_segment_tokens = 150;
  double entropy_threshold = 1.0;
  int64_t entropy_top_k = 20;
  // The distribution of the gate's entropy and of the forced-distinct second token: raw = the
  // model's log-probs (the reference's vLLM V1 default), processed = after the repetition penalty,
  // temperature, top-k and top-p.
  std::string entropy_source = "raw"; // raw | processed
  // The root's two children: forced = the seed's forced first split (the second child's first token
  // differs from the first's, drawn from the top-20 as at an entropy split, however certain the
  // model is); sampled = two children sampled as the rest are, with no forced distinct token.
  std::string first_split = "forced"; // forced | sampled
  std::vector<std::string> delimiters = {"\n", ".", "!", "?", ";", ":"};
  std::string coverage = "seed"; // seed | reference | off
  // seed: a leaf of at least this many tokens gets an extra sibling (the seed's X > L_min; when
  // unset, min_segment_tokens + 1).
  int64_t coverage_min_tokens = 151;
  // reference: a leaf longer than this many characters is cut for two regenerated children.
  int64_t coverage_min_chars = 150;
  // grpo / tempo: independent samples per prompt
  int64_t samples = 8;
  // treepo: segments of segment_tokens, each active path forks into branches, width <= max_width;
  // fixed: each node forks `branches` continuations of at most segment_tokens, to depth max_depth.
  int64_t segment_tokens = 256;
  int64_t branches = 2;
  int64_t max_width = 16;
  // all shapes
  int64_t max_node_tokens = 1300;
  int64_t max_answer_tokens = 2600;
  double temperature = 0.6;
  double top_p = 0.85;
  int64_t top_k = 25;
  double repetition_penalty = 1.1;
  int64_t max_live_branches = 256; // branches decoded together in one step
  // The paged KV pool in tokens (0: max_live_branches x (longest prompt + max_answer_tokens + 1),
  // a dense cache's size) and its block size.
  int64_t kv_cache_tokens = 0;
  // Or the pool sized at each rollout's start to this fraction of the device memory then free
  // (util/device_memory.h; 0: off). The rest of the free memory holds the step's transients.
  double kv_cache_memory_fraction = 0;
  int64_t kv_block_tokens = 16;
  // Decode attention over the pool: torch (each sequence's blocks gathered for SDPA, LibTorch ops
  // only) or paged_kernel (read in place: a loop on the CPU, a CUDA kernel on GPUs). torch until
  // scripts/gpu_check.sh has held the CUDA kernel equal to the CPU path on a GPU; on the CPU the
  // two run at the same speed on the demo's model (README "Benchmarks").
  std::string decode_attention = "torch";
  // Decode steps padded to batch buckets and replayed as CUDA graphs (model/decode_graphs.h):
  // CUDA and the paged kernel only. Off until scripts/gpu_check.sh has held the replayed steps
  // equal to the eager ones on a GPU.
  bool cuda_graphs = false;
  // The trees of up to this many optimiser steps grow in one engine run (a block), so the batch
  // holds several prompts' branches; each step then trains on its own trees, pi_old the sampling
  // log-probs (the PPO ratio covers the lag). A block ends at a scheduled checkpoint.
  int64_t prompts_in_flight = 1;
};

struct TrainConfig {
  double lr = 1e-6;
  int64_t prompts_per_step = 1;
  double clip_eps = 0.2;      // epsilon_low
  double clip_eps_high = 0.2; // epsilon_high (DAPO's clip-higher when larger)
  // grpo / tempo: a named pair (advantage scaling, aggregation) as TRL's loss_type names them:
  // grpo (std-normalised, seq-mean-token-mean), dr-grpo (no std, dr-grpo), dapo (std-normalised,
  // token-mean), or none (train.std_normalize and train.loss_agg as set). Unset: grpo, or none when
  // either of those two keys is set.
  std::string preset = "grpo";
  // group-token-mean | token-mean | seq-mean-token-mean | dr-grpo (the last two: sample shapes)
  std::string loss_agg = "group-token-mean";
  double dr_grpo_constant = 2600; // dr-grpo: each sequence's token sum / this constant
  int64_t steps = 0;              // 0 = `epochs` passes over data.train
  int64_t epochs = 1;
  int64_t token_budget =
      0; // > 0: stop once rollouts sampled this many tokens (equal-budget baselines)
  int64_t seed = 42;
  // adamw: float32 moments (+ a bf16 Kahan buffer for bf16 weights), 8 bytes of state per
  // parameter (10 for bf16); adamw-bf16: bfloat16 moments and bfloat16 weights updated with
  // stochastic rounding, 4 bytes per parameter and no buffer (the lean choice for 24 GB).
  std::string optimizer = "adamw"; // adamw | adamw-bf16
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  int64_t warmup_steps = 0;
  std::string lr_schedule = "constant"; // constant | cosine
  double max_grad_norm = 1.0;           // 0 disables clipping
  int64_t grad_accum = 1;
  bool gradient_checkpointing = false; // recompute each layer in the backward (less memory)
  // The packed forward runs on pieces of at most this many tokens (model/tree_pieces.h), with the
  // whole tree's gradients; 0 = one forward per tree.
  int64_t max_tokens_per_forward = 0;
  bool autocast = false;      // bf16 autocast of the training forward over float32 (master) weights
  double kl_coef = 0.0;       // beta; > 0 adds a k3 KL to a frozen reference model
  bool std_normalize = false; // grpo / tempo: divide advantages by the group std
  // treepo: whiten the advantages over each rollout batch's trees (every token of every sample), as
  // TreePO's code does with verl's masked_whiten.
  bool whiten_advantages = true;
  bool filter_zero_signal = false; // DAPO-style: skip trees whose leaves all agree
  int64_t max_bad_steps = 3;       // abort after this many NaN/Inf steps in a row
};

// Supervised warm-up (`treerpo-train sft`) on chat-formatted CoT solutions, loss on assistant
// tokens only. Optimiser settings other than the learning rate come from `train`.
struct SftConfig {
  std::string data;                       // JSONL; empty = data.train
  std::string question_field = "problem"; // NuminaMath-CoT style by default
  std::string solution_field = "solution";
  double lr = 1e-5;
  std::string lr_schedule = "cosine"; // constant | cosine (after train.warmup_steps)
  int64_t epochs = 1;
  int64_t steps = 0; // 0 = `epochs` passes
  int64_t batch_size = 8;
};

struct CheckpointConfig {
  std::string dir = "runs/treerpo"; // run directory
  int64_t every = 50;               // steps; 0 = only at the end and on signals
  int64_t keep = 3;
};

struct EvalConfig {
  std::string data; // JSONL for periodic evaluation during training; empty = off
  int64_t every = 0;
  int64_t limit = 0; // 0 = all problems
  int64_t maj = 0;   // 0 = greedy only; k = also maj@k
  int64_t max_new_tokens = 1024;
  int64_t batch = 64;
};

struct LogConfig {
  std::string level = "info"; // debug | info | warn
  bool tensorboard = true;
  int64_t render_trees_every = 10; // steps; 0 = never
};

// Data-parallel jobs (torchrun's variables; a process without WORLD_SIZE runs alone).
struct DistributedConfig {
  // How long a collective (and joining the job) waits for the other ranks before failing: a rank
  // that died is found sooner, at the next collective, as soon as its sockets close.
  int64_t timeout_s = 1800;
};

struct Config {
  ModelConfig model;
  DataConfig data;
  RolloutConfig rollout;
  TrainConfig train;
  SftConfig sft;
  CheckpointConfig checkpoint;
  EvalConfig eval;
  LogConfig log;
  DistributedConfig distributed;
  // Full names ("rollout.samples") of keys the user set in the file or with --set: validation
  // rejects keys that the chosen rollout.algorithm does not use rather than ignoring them.
  std::set<std::string> explicitly_set;
};

// Loads `path` (empty = defaults only), applies `overrides` ("section.key=value", value parsed as
// YAML), validates everything. Throws treerpo::Error (bad input) naming file:line or the --set, and
// the full key.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The effective configuration as YAML (every key, including defaults), as written into the run
// directory.
std::string to_yaml(const Config& config);

// The keys `config` uses whose values differ from the defaults' (derived keys included), one
// "section.key: value" line each in field order: what a checkpoint's config hash covers, so a key
// a later version adds, at its default, leaves the hash of an earlier run's config unchanged.
std::string changed_settings(const Config& config);

} // namespace treerpo
