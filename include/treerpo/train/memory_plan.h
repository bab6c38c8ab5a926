#pragma once
// The memory plan (`treerpo-train plan`): bytes of every component a training step holds on the
// device (weights, gradients, optimiser state, the rollout's KV cache and decode transients, the
// packed tree forward's saved activations, the LM head's chunks), computed from the model's shape
// and the run configuration without loading weights, and summed per phase of the step. Each
// component is modelled on what the code does today (tree_forward.cpp, decoder_layer.cpp,
// token_logprobs.cpp, qwen2.cpp, sampler.cpp); tests hold the activations to the counting
// allocator (util/allocation_counter.h) on a small model.
#include <cstdint>
#include <string>
#include <vector>

#include "treerpo/config/config.h"
#include "treerpo/model/config.h"

namespace treerpo::train {

// Trainable parameters as model::Qwen2 stores them: embedding; per layer q/k/v weights and biases,
// o_proj, gate/up/down, two RMSNorm weights; the final norm; lm_head only when untied.
int64_t parameter_count(const model::Qwen2Config& shape);
// Elements of the largest parameter (the embedding, or the lm_head).
int64_t largest_parameter_numel(const model::Qwen2Config& shape);

// A seed-shaped tree as PackedTree parents: `prompt_tokens` prompt tokens, then `depth` levels of
// nodes of answer_tokens / depth tokens each, so every root-to-leaf answer is `answer_tokens` long
// (as rollout.max_answer_tokens bounds it): one node at the first level, then each level's node
// count the level above's times one branching factor, chosen so the nodes hold about
// `tree_tokens` tokens; each level's nodes spread evenly under the level above.
std::vector<int32_t> synthetic_tree(int64_t prompt_tokens, int64_t tree_tokens,
                                    int64_t answer_tokens, int64_t depth);
// Its node count per level.
std::vector<int64_t> synthetic_level_nodes(int64_t tree_tokens, int64_t answer_tokens,
                                           int64_t depth);

// Bytes of the packed tree forward + backward (Qwen2::tree_logprobs(tree).sum().backward()) beyond
// weights and gradients, for the tree given by its parents. `dtype_bytes` is the weights' (and
// activations') element size: 4 float32, 2 bfloat16.
struct TreeForwardBytes {
  int64_t activations = 0;    // saved for backward at the end of the forward
  int64_t kept = 0;           // every level's keys/values and outputs, kept until the LM head ran
  int64_t layer_backward = 0; // the largest layer backward's transient (recompute + gradients)
  int64_t lm_head_forward = 0, lm_head_backward = 0; // the LM head's chunk transients
  int64_t lm_head_chunks() const;
  // activations + the largest of: kept + the LM head's forward, its backward, a layer's backward.
  int64_t peak() const;
};
TreeForwardBytes plan_tree_forward_bytes(const model::Qwen2Config& shape, int64_t dtype_bytes,
                                         bool checkpointing, const std::vector<int32_t>& parent);

struct PlanOptions {
  double memory_gib = 24;
  int64_t prompt_tokens = 200;
  int64_t tree_tokens = 60000;
};

// The plan as one JSON object (bytes per component, per phase, the peak, and the assumptions).
std::string memory_plan_json(const Config& config, const model::Qwen2Config& shape,
                             const PlanOptions& options);

} // namespace treerpo::train
