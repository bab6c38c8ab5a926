// Every validation rule of every section: the override that breaks it and the words the error must
// carry.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "treerpo/config/config.h"
#include "treerpo/util/error.h"

namespace {

struct Case {
  std::vector<std::string> overrides;
  std::string expected; // substring of the one-line error
};

std::string error_of(const std::vector<std::string>& overrides) {
  try {
    treerpo::load_config("", overrides);
  } catch (const treerpo::Error& e) {
    return e.what();
  }
  return "";
}

class Rejected : public ::testing::TestWithParam<Case> {};

TEST_P(Rejected, NamesTheKeyAndTheProblem) {
  const Case& c = GetParam();
  std::string msg = error_of(c.overrides);
  EXPECT_NE(msg.find(c.expected), std::string::npos) << "got: '" << msg << "'";
  EXPECT_NE(msg.find("--set " + c.overrides.back()), std::string::npos) << msg;
}

const std::vector<Case> kRejected = {
    // model
    {{"model.dtype=float16"}, "model.dtype: 'float16' is not one of: float32, bfloat16"},
    {{"model.device=gpu"}, "model.device: 'gpu' is not cpu, cuda or cuda:N"},
    {{"model.memory_gb=-1"}, "model.memory_gb: must be at least 0"},
    {{"model.device=cpu", "model.memory_gb=20"},
     "model.memory_gb: caps the CUDA caching allocator; model.device is cpu"},
    // data
    {{"data.question_field="}, "data.question_field: must not be empty"},
    {{"data.answer_field="}, "data.answer_field: must not be empty"},
    // rollout
    {{"rollout.algorithm=ppo"}, "rollout.algorithm: 'ppo' is not one of"},
    {{"rollout.max_depth=0"}, "rollout.max_depth: must be at least 1"},
    {{"rollout.min_segment_tokens=-1"}, "rollout.min_segment_tokens: must be at least 0"},
    {{"rollout.entropy_threshold=-0.5"}, "rollout.entropy_threshold: must be at least 0"},
    {{"rollout.entropy_top_k=1"}, "rollout.entropy_top_k: must be at least 2"},
    {{"rollout.delimiters=[]"}, "rollout.delimiters: must list at least one delimiter"},
    {{"rollout.delimiters=[\".\", \"\"]"}, "rollout.delimiters: contains an empty delimiter"},
    {{"rollout.coverage=always"}, "rollout.coverage: 'always' is not one of: seed, reference, off"},
    {{"rollout.coverage_min_chars=-3"}, "rollout.coverage_min_chars: must be at least 0"},
    {{"rollout.entropy_source=logits"},
     "rollout.entropy_source: 'logits' is not one of: raw, processed"},
    {{"rollout.first_split=none"}, "rollout.first_split: 'none' is not one of: forced, sampled"},
    {{"rollout.decode_attention=flash"},
     "rollout.decode_attention: 'flash' is not one of: torch, paged_kernel"},
    {{"model.device=cuda", "rollout.cuda_graphs=true"},
     "rollout.cuda_graphs: records the paged kernel's decode steps, but "
     "rollout.decode_attention is torch"},
    {{"model.device=cpu", "rollout.decode_attention=paged_kernel", "rollout.cuda_graphs=true"},
     "rollout.cuda_graphs: needs a CUDA device, but model.device is cpu"},
    {{"rollout.kv_cache_memory_fraction=1"},
     "rollout.kv_cache_memory_fraction: must be in [0, 1), got 1"},
    {{"rollout.kv_cache_memory_fraction=-0.1"},
     "rollout.kv_cache_memory_fraction: must be in [0, 1), got -0.1"},
    {{"rollout.kv_cache_tokens=65536", "rollout.kv_cache_memory_fraction=0.5"},
     "rollout.kv_cache_memory_fraction: sizes the KV pool, and so does rollout.kv_cache_tokens "
     "(65536)"},
    // the seed's coverage length X > L_min
    {{"rollout.coverage_min_tokens=150"},
     "rollout.coverage_min_tokens: must be greater than rollout.min_segment_tokens (150), got 150"},
    {{"rollout.min_segment_tokens=20", "rollout.coverage_min_tokens=12"},
     "rollout.coverage_min_tokens: must be greater than rollout.min_segment_tokens (20)"},
    {{"rollout.coverage_min_chars=40"},
     "rollout.coverage_min_chars: is not used when rollout.coverage is 'seed' (only with "
     "reference)"},
    {{"rollout.coverage=reference", "rollout.coverage_min_tokens=300"},
     "rollout.coverage_min_tokens: is not used when rollout.coverage is 'reference' (only with "
     "seed)"},
    {{"rollout.algorithm=grpo", "rollout.coverage_min_tokens=300"},
     "rollout.coverage_min_tokens: is not used when rollout.algorithm is 'grpo'"},
    {{"rollout.algorithm=grpo", "rollout.entropy_source=processed"},
     "rollout.entropy_source: is not used when rollout.algorithm is 'grpo'"},
    {{"rollout.algorithm=grpo", "rollout.first_split=sampled"},
     "rollout.first_split: is not used when rollout.algorithm is 'grpo'"},
    {{"rollout.algorithm=grpo", "rollout.samples=1"}, "rollout.samples: must be at least 2"},
    {{"rollout.algorithm=treepo", "rollout.segment_tokens=0"},
     "rollout.segment_tokens: must be at least 1"},
    {{"rollout.algorithm=fixed", "rollout.branches=1"}, "rollout.branches: must be at least 2"},
    {{"rollout.algorithm=treepo", "rollout.max_width=1"}, "rollout.max_width: must be at least 2"},
    {{"rollout.max_node_tokens=0"}, "rollout.max_node_tokens: must be at least 1"},
    {{"rollout.max_answer_tokens=0"}, "rollout.max_answer_tokens: must be at least 1"},
    {{"rollout.temperature=-1"}, "rollout.temperature: must be at least 0"},
    {{"rollout.top_p=0"}, "rollout.top_p: must be in (0, 1]"},
    {{"rollout.top_p=1.5"}, "rollout.top_p: must be in (0, 1]"},
    {{"rollout.top_k=-1"}, "rollout.top_k: must be at least 0"},
    {{"rollout.top_k=1"}, "rollout.top_k: must be 0 (off) or at least 2 for treerpo"},
    {{"rollout.repetition_penalty=0"}, "rollout.repetition_penalty: must be greater than 0"},
    {{"rollout.max_live_branches=1"}, "rollout.max_live_branches: must be at least 2"},
    // keys a shape does not read are rejected, not ignored
    {{"rollout.samples=4"}, "rollout.samples: is not used when rollout.algorithm is 'treerpo'"},
    {{"rollout.algorithm=grpo", "rollout.max_depth=3"},
     "rollout.max_depth: is not used when rollout.algorithm is 'grpo'"},
    {{"rollout.algorithm=grpo", "rollout.min_segment_tokens=3"},
     "rollout.min_segment_tokens: is not used"},
    {{"rollout.algorithm=tempo", "rollout.entropy_threshold=2"},
     "rollout.entropy_threshold: is not used"},
    {{"rollout.algorithm=fixed", "rollout.entropy_top_k=5"}, "rollout.entropy_top_k: is not used"},
    {{"rollout.algorithm=grpo", "rollout.delimiters=[\".\"]"}, "rollout.delimiters: is not used"},
    {{"rollout.algorithm=treepo", "rollout.coverage=off"}, "rollout.coverage: is not used"},
    {{"rollout.algorithm=treepo", "rollout.coverage_min_chars=9"},
     "rollout.coverage_min_chars: is not used"},
    {{"rollout.algorithm=fixed", "rollout.samples=4"}, "rollout.samples: is not used"},
    {{"rollout.segment_tokens=64"}, "rollout.segment_tokens: is not used"},
    {{"rollout.algorithm=grpo", "rollout.branches=3"}, "rollout.branches: is not used"},
    {{"rollout.algorithm=fixed", "rollout.max_width=8"}, "rollout.max_width: is not used"},
    {{"train.std_normalize=true"},
     "train.std_normalize: is not used when rollout.algorithm is 'treerpo'"},
    {{"train.dr_grpo_constant=100"},
     "train.dr_grpo_constant: is not used when train.loss_agg is 'group-token-mean'"},
    // train
    {{"train.lr=0"}, "train.lr: must be greater than 0"},
    {{"train.prompts_per_step=0"}, "train.prompts_per_step: must be at least 1"},
    {{"train.clip_eps=1"}, "train.clip_eps: must be in (0, 1)"},
    {{"train.clip_eps_high=0"}, "train.clip_eps_high: must be greater than 0"},
    {{"train.loss_agg=sum"}, "train.loss_agg: 'sum' is not one of"},
    {{"rollout.algorithm=grpo", "train.loss_agg=dr-grpo", "train.dr_grpo_constant=0"},
     "train.dr_grpo_constant: must be greater than 0"},
    // GRPO-family presets and the per-sequence aggregations
    {{"train.preset=grpo"}, "train.preset: is not used when rollout.algorithm is 'treerpo'"},
    {{"rollout.algorithm=grpo", "train.whiten_advantages=false"},
     "train.whiten_advantages: is not used when rollout.algorithm is 'grpo' (only with treepo)"},
    {{"rollout.algorithm=grpo", "train.preset=ppo"}, "train.preset: 'ppo' is not one of"},
    {{"rollout.algorithm=grpo", "train.preset=grpo", "train.loss_agg=token-mean"},
     "train.loss_agg: 'token-mean' contradicts train.preset: grpo ('seq-mean-token-mean'"},
    {{"rollout.algorithm=grpo", "train.preset=dr-grpo", "train.std_normalize=true"},
     "train.std_normalize: true contradicts train.preset: dr-grpo (false"},
    {{"rollout.algorithm=grpo", "train.loss_agg=dr-grpo", "train.std_normalize=true"},
     "train.std_normalize: Dr-GRPO drops the std normalisation by definition"},
    {{"train.loss_agg=seq-mean-token-mean"},
     "train.loss_agg: 'seq-mean-token-mean' averages over sampled sequences, but "
     "rollout.algorithm 'treerpo' credits tree nodes"},
    {{"rollout.algorithm=fixed", "train.loss_agg=dr-grpo"},
     "train.loss_agg: 'dr-grpo' averages over sampled sequences"},
    {{"train.steps=-1"}, "train.steps: must be at least 0"},
    {{"train.epochs=0"}, "train.epochs: must be at least 1"},
    {{"train.token_budget=-5"}, "train.token_budget: must be at least 0"},
    {{"train.seed=-2"}, "train.seed: must be at least 0"},
    {{"train.weight_decay=-0.1"}, "train.weight_decay: must be at least 0"},
    {{"train.adam_beta1=1"}, "train.adam_beta1: must be in [0, 1)"},
    {{"train.adam_beta2=-0.1"}, "train.adam_beta2: must be in [0, 1)"},
    {{"train.adam_eps=0"}, "train.adam_eps: must be greater than 0"},
    {{"train.warmup_steps=-1"}, "train.warmup_steps: must be at least 0"},
    {{"train.lr_schedule=linear"}, "train.lr_schedule: 'linear' is not one of: constant, cosine"},
    {{"train.max_grad_norm=-1"}, "train.max_grad_norm: must be at least 0"},
    {{"train.grad_accum=0"}, "train.grad_accum: must be at least 1"},
    {{"train.autocast=true"},
     "train.autocast: casts float32 weights to bfloat16 for the forward, but model.dtype is "
     "bfloat16"},
    {{"train.kl_coef=-0.01"}, "train.kl_coef: must be at least 0"},
    {{"train.max_bad_steps=0"}, "train.max_bad_steps: must be at least 1"},
    // sft
    {{"sft.question_field="}, "sft.question_field: must not be empty"},
    {{"sft.solution_field="}, "sft.solution_field: must not be empty"},
    {{"sft.lr=-1"}, "sft.lr: must be greater than 0"},
    {{"sft.lr_schedule=linear"}, "sft.lr_schedule: 'linear' is not one of: constant, cosine"},
    {{"sft.epochs=0"}, "sft.epochs: must be at least 1"},
    {{"sft.steps=-1"}, "sft.steps: must be at least 0"},
    {{"sft.batch_size=0"}, "sft.batch_size: must be at least 1"},
    // checkpoint
    {{"checkpoint.dir="}, "checkpoint.dir: must not be empty"},
    {{"checkpoint.every=-1"}, "checkpoint.every: must be at least 0"},
    {{"checkpoint.keep=0"}, "checkpoint.keep: must be at least 1"},
    // eval
    {{"eval.every=-1"}, "eval.every: must be at least 0"},
    {{"eval.every=10"}, "eval.every: periodic evaluation needs eval.data"},
    {{"eval.limit=-1"}, "eval.limit: must be at least 0"},
    {{"eval.maj=1"}, "eval.maj: must be 0 (off) or at least 2"},
    {{"eval.max_new_tokens=0"}, "eval.max_new_tokens: must be at least 1"},
    {{"eval.batch=0"}, "eval.batch: must be at least 1"},
    // log
    {{"log.level=trace"}, "log.level: 'trace' is not one of: debug, info, warn"},
    {{"log.render_trees_every=-1"}, "log.render_trees_every: must be at least 0"},
    // distributed
    {{"distributed.timeout_s=0"}, "distributed.timeout_s: must be at least 1"},
};

INSTANTIATE_TEST_SUITE_P(EveryRule, Rejected, ::testing::ValuesIn(kRejected));

TEST(Accepted, EachShapeTakesItsOwnKeys) {
  EXPECT_EQ(error_of({"rollout.algorithm=grpo", "rollout.samples=16", "train.std_normalize=true"}),
            "");
  EXPECT_EQ(error_of({"rollout.algorithm=tempo", "rollout.samples=4"}), "");
  EXPECT_EQ(error_of({"rollout.algorithm=treepo", "rollout.segment_tokens=64", "rollout.branches=4",
                      "rollout.max_width=32"}),
            "");
  EXPECT_EQ(error_of({"rollout.algorithm=fixed", "rollout.max_depth=3", "rollout.branches=3",
                      "rollout.segment_tokens=100"}),
            "");
  EXPECT_EQ(
      error_of({"rollout.algorithm=grpo", "train.loss_agg=dr-grpo", "train.dr_grpo_constant=1024"}),
      "");
  EXPECT_EQ(error_of({"rollout.algorithm=treepo", "train.loss_agg=seq-mean-token-mean",
                      "train.whiten_advantages=false"}),
            "");
  EXPECT_EQ(error_of({"rollout.coverage=reference", "rollout.coverage_min_chars=40",
                      "rollout.entropy_source=processed"}),
            "");
  // A preset restated by the value it sets is no contradiction (an effective config reloads).
  EXPECT_EQ(error_of({"rollout.algorithm=grpo", "train.preset=dapo", "train.loss_agg=token-mean",
                      "train.std_normalize=true"}),
            "");
  EXPECT_EQ(error_of({"eval.every=10", "eval.data=test.jsonl", "eval.maj=8", "rollout.top_k=0"}),
            "");
  EXPECT_EQ(
      error_of({"train.autocast=true", "model.dtype=float32", "train.gradient_checkpointing=true"}),
      "");
}

treerpo::Config loaded(const std::vector<std::string>& overrides) {
  return treerpo::load_config("", overrides);
}

TEST(Derived, CoverageLengthFollowsTheSegmentLength) {
  EXPECT_EQ(loaded({}).rollout.coverage_min_tokens, 151);
  EXPECT_EQ(loaded({"rollout.min_segment_tokens=2"}).rollout.coverage_min_tokens, 3);
  EXPECT_EQ(loaded({"rollout.min_segment_tokens=2", "rollout.coverage_min_tokens=9"})
                .rollout.coverage_min_tokens,
            9);
}

TEST(Derived, SampleShapesDefaultToStandardGrpo) {
  // DeepSeekMath GRPO = TRL loss_type "grpo" with scale_rewards "group".
  treerpo::Config grpo = loaded({"rollout.algorithm=grpo"});
  EXPECT_EQ(grpo.train.preset, "grpo");
  EXPECT_TRUE(grpo.train.std_normalize);
  EXPECT_EQ(grpo.train.loss_agg, "seq-mean-token-mean");
  treerpo::Config dr = loaded({"rollout.algorithm=grpo", "train.preset=dr-grpo"});
  EXPECT_FALSE(dr.train.std_normalize);
  EXPECT_EQ(dr.train.loss_agg, "dr-grpo");
  treerpo::Config dapo = loaded({"rollout.algorithm=tempo", "train.preset=dapo"});
  EXPECT_TRUE(dapo.train.std_normalize);
  EXPECT_EQ(dapo.train.loss_agg, "token-mean");
  // Setting either key yourself means no preset.
  treerpo::Config own = loaded({"rollout.algorithm=grpo", "train.loss_agg=token-mean"});
  EXPECT_EQ(own.train.preset, "none");
  EXPECT_FALSE(own.train.std_normalize);
  EXPECT_EQ(own.train.loss_agg, "token-mean");
  // Trees keep the TreeRPO reference's aggregation.
  EXPECT_EQ(loaded({}).train.loss_agg, "group-token-mean");
  EXPECT_FALSE(loaded({}).train.std_normalize);
}

TEST(Accepted, DefaultValueErrorsPointAtTheConfig) {
  // A cross-key rule broken by a default still names the key and says the value was a default.
  std::string msg = error_of({"rollout.algorithm=treepo", "rollout.branches=20"});
  EXPECT_NE(msg.find("rollout.max_width: must be at least 20"), std::string::npos) << msg;
  EXPECT_NE(msg.find("default value"), std::string::npos) << msg;
}

} // namespace
