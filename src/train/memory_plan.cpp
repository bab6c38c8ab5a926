#include "treerpo/train/memory_plan.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "treerpo/model/tree_levels.h"
#include "treerpo/model/tree_pieces.h"
#include "treerpo/train/optimizer_memory.h"

namespace treerpo::train {
namespace {

constexpr int64_t kFloat = 4, kInt64 = 8, kBool = 1;
// token_logprobs.cpp: about 256 MB of float32 logits per chunk of rows.
constexpr int64_t kLmHeadChunkFloats = int64_t{1} << 26;

// One batch of the packed tree forward as tree_forward.cpp runs it (model/tree_levels.h): `batch`
// segments padded to the longest `span`, ancestors gathered up to the deepest `context`; `tokens`
// are the real ones.
struct Level {
  int64_t batch = 0, span = 0, context = 0, tokens = 0;
};

// The forward's batches for the tree, with the batching Qwen2 uses for this shape.
std::vector<Level> tree_levels(const model::Qwen2Config& c, const std::vector<int32_t>& parent) {
  const model::LevelBatching batching =
      model::LevelBatching::for_shape(c.hidden_size, c.num_key_value_heads * c.head_dim());
  std::vector<Level> levels;
  for (const model::LevelBatch& b : model::level_batches(model::tree_segments(parent), batching)) {
    levels.push_back({static_cast<int64_t>(b.segments.size()), b.span, b.context, b.tokens});
  }
  return levels;
}

// What autograd saves for one decoder layer of one level (decoder_layer.cpp, not checkpointed).
// e: the activations' element size. rms_norm computes in float32: it saves its float32 input (the
// layer input itself when float32), the per-row rsqrt and the normed rows in the model dtype. A
// product with a RoPE table saves only the table (the tables need no gradient).
int64_t layer_saved_bytes(const model::Qwen2Config& c, int64_t e, const Level& l) {
  const int64_t rows = l.batch * l.span, keys = l.batch * (l.context + l.span);
  const int64_t h = rows * c.hidden_size, kv = c.num_key_value_heads * c.head_dim();
  const int64_t group = c.num_attention_heads / c.num_key_value_heads;
  const int64_t rms = kFloat * h + e * h + kFloat * rows;
  int64_t bytes = 2 * rms;            // input and post-attention norms
  bytes += 2 * e * h;                 // their outputs, read by q/k/v and by gate/up
  bytes += e * h + 2 * e * keys * kv; // the roped queries; keys and values [ancestors | own]
  bytes += e * h + kFloat * rows * c.num_attention_heads; // SDPA output and its log-sum-exp
  bytes += e * h;                              // the output's [T, hidden] copy for o_proj
  bytes += 4 * e * rows * c.intermediate_size; // gate, silu(gate), up, their product
  // SDPA turns the boolean mask into an additive one in the activations' dtype and keeps it.
  bytes += e * l.batch * group * l.span * (l.context + l.span);
  return bytes;
}

// Per level, what every layer shares and autograd keeps: the RoPE tables, the embedding's ids and
// the index tensors of the gathers (own rows, ancestor rows); checkpointed layers also keep the
// boolean mask with the query group folded in as their input.
int64_t level_shared_bytes(const model::Qwen2Config& c, int64_t e, bool checkpointing,
                           const Level& l) {
  const int64_t rows = l.batch * l.span;
  const int64_t group = c.num_attention_heads / c.num_key_value_heads;
  const int64_t mask = checkpointing ? kBool * l.batch * group * l.span * (l.context + l.span) : 0;
  return 2 * e * rows * c.head_dim() + mask + kInt64 * (rows + l.tokens + l.batch * l.context);
}

// What a checkpointed layer saves: its input hidden states and the gathered ancestor keys/values.
int64_t checkpointed_layer_bytes(const model::Qwen2Config& c, int64_t e, const Level& l) {
  const int64_t kv = c.num_key_value_heads * c.head_dim();
  return e * l.batch * l.span * c.hidden_size + 2 * e * l.batch * l.context * kv;
}

// The layer backward's own buffers beyond what was saved: gradients of the layer's input and
// output hidden states, of its keys/values (ancestors included) and of the MLP's widest tensor.
int64_t layer_backward_bytes(const model::Qwen2Config& c, int64_t e, const Level& l) {
  const int64_t rows = l.batch * l.span, keys = l.batch * (l.context + l.span);
  const int64_t kv = c.num_key_value_heads * c.head_dim();
  return e * (3 * rows * c.hidden_size + 4 * keys * kv + 2 * rows * c.intermediate_size);
}

} // namespace

int64_t parameter_count(const model::Qwen2Config& c) {
  const int64_t h = c.hidden_size, kv = c.num_key_value_heads * c.head_dim();
  const int64_t attention = h * h + h + 2 * (h * kv + kv) + h * h; // q, k, v (+ biases), o
  const int64_t mlp = 3 * h * c.intermediate_size;                 // gate, up, down
  const int64_t layer = attention + mlp + 2 * h;                   // + two RMSNorm weights
  const int64_t embedding = c.vocab_size * h;
  return embedding + c.num_hidden_layers * layer + h + (c.tie_word_embeddings ? 0 : embedding);
}

int64_t largest_parameter_numel(const model::Qwen2Config& c) {
  return std::max(c.vocab_size * c.hidden_size, c.hidden_size * c.intermediate_size);
}

std::vector<int64_t> synthetic_level_nodes(int64_t tree_tokens, int64_t answer_tokens,
                                           int64_t depth) {
  depth = std::max<int64_t>(1, depth);
  const int64_t span = std::max<int64_t>(1, answer_tokens / depth);
  const int64_t target = std::max<int64_t>(depth, tree_tokens / span);
  auto levels = [&](double branching) {
    std::vector<int64_t> n{1};
    for (int64_t l = 1; l < depth; ++l) {
      // Capped at the target: a large factor's powers would overflow int64.
      const double want =
          std::min(std::pow(branching, static_cast<double>(l)), static_cast<double>(target));
      n.push_back(std::max<int64_t>(n.back(), std::llround(want)));
    }
    return n;
  };
  auto total = [](const std::vector<int64_t>& n) {
    int64_t t = 0;
    for (int64_t v : n) t += v;
    return t;
  };
  // The node count grows with the branching factor: bisect for the one that holds `target`.
  double lo = 1.0, hi = static_cast<double>(target);
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (total(levels(mid)) > target ? hi : lo) = mid;
  }
  return levels(lo);
}

std::vector<int32_t> synthetic_tree(int64_t prompt_tokens, int64_t tree_tokens,
                                    int64_t answer_tokens, int64_t depth) {
  const std::vector<int64_t> nodes = synthetic_level_nodes(tree_tokens, answer_tokens, depth);
  const int64_t span = std::max<int64_t>(1, answer_tokens / std::max<int64_t>(1, depth));
  std::vector<int32_t> parent;
  auto add_span = [&](int32_t from, int64_t length) {
    for (int64_t i = 0; i < length; ++i) {
      parent.push_back(from);
      from = static_cast<int32_t>(parent.size()) - 1;
    }
    return from;
  };
  std::vector<int32_t> ends{add_span(-1, std::max<int64_t>(1, prompt_tokens))};
  for (size_t level = 0; level < nodes.size(); ++level) {
    std::vector<int32_t> next;
    const auto above = static_cast<int64_t>(ends.size());
    // Node j of the level hangs under node j * above / count of the level above: evenly spread.
    for (int64_t j = 0; j < nodes[level]; ++j) {
      next.push_back(add_span(ends[static_cast<size_t>(j * above / nodes[level])], span));
    }
    ends = std::move(next);
  }
  return parent;
}

int64_t TreeForwardBytes::lm_head_chunks() const {
  return std::max(lm_head_forward, lm_head_backward);
}

int64_t TreeForwardBytes::peak() const {
  return activations + std::max({kept + lm_head_forward, lm_head_backward, layer_backward});
}

TreeForwardBytes plan_tree_forward_bytes(const model::Qwen2Config& c, int64_t e, bool checkpointing,
                                         const std::vector<int32_t>& parent) {
  TreeForwardBytes out;
  const std::vector<Level> levels = tree_levels(c, parent);
  const int64_t layers = c.num_hidden_layers, kv = c.num_key_value_heads * c.head_dim();
  int64_t tokens = 0;
  for (const Level& l : levels) {
    tokens += l.tokens;
    out.activations += level_shared_bytes(c, e, checkpointing, l);
    out.activations +=
        layers * (checkpointing ? checkpointed_layer_bytes(c, e, l) : layer_saved_bytes(c, e, l));
    const int64_t backward =
        layer_backward_bytes(c, e, l) + (checkpointing ? layer_saved_bytes(c, e, l) : 0);
    out.layer_backward = std::max(out.layer_backward, backward);
  }
  // Kept across levels (not saved: freed when tree_logprobs returns): every layer's keys and values
  // of the real tokens, the last layer's output.
  out.kept = tokens * (2 * layers * kv * e + c.hidden_size * e);
  // The LM head reads the final-normed hidden state at every token's parent (token_logprobs.cpp).
  const int64_t rows = std::max<int64_t>(0, tokens - 1), h = c.hidden_size, v = c.vocab_size;
  // rms_norm saves its float32 input, the rsqrt and the normed rows; token_logprobs the product
  // with the norm weight, the log-sum-exp and the targets; the gathers and index_put their indices.
  out.activations += (kFloat + 2 * e) * rows * h + 3 * kFloat * rows + 3 * kInt64 * rows;
  const int64_t chunk = std::min(rows, std::max<int64_t>(1, kLmHeadChunkFloats / v));
  const int64_t matmul_copy = e == kFloat ? 0 : e; // the logits' bf16 matmul output before float32
  out.lm_head_forward = chunk * v * (kFloat + matmul_copy);
  // Backward: logits, logits - lse, its exp, its negation and dlogits live together (one
  // expression's temporaries); grad_w accumulates in
  // float32 [vocab, hidden] beside each chunk's product; grad_x is [rows, hidden].
  out.lm_head_backward =
      chunk * v * (5 * kFloat + matmul_copy) + v * h * (kFloat + e) + rows * h * e;
  return out;
}

// CUDA's context, cuBLAS workspaces and the caching allocator's fragmentation: about 1 GiB on
// the device that no tensor accounts for; nothing on the CPU.
constexpr int64_t kCudaContextAllowance = int64_t{1} << 30;

std::string memory_plan_json(const Config& config, const model::Qwen2Config& shape,
                             const PlanOptions& options) {
  const bool bf16 = config.model.dtype == "bfloat16";
  const int64_t e = bf16 ? 2 : kFloat, params = parameter_count(shape);
  const int64_t kv = shape.num_key_value_heads * shape.head_dim();
  const int64_t slots = config.rollout.max_live_branches;
  // rl.cpp: the paged pool, rollout.kv_cache_tokens or kv_cache_memory_fraction (both 0: slots x
  // (longest prompt + answer + 1)).
  const int64_t cache_tokens = options.prompt_tokens + config.rollout.max_answer_tokens + 1;
  const int64_t block = config.rollout.kv_block_tokens;
  const int64_t token_bytes = shape.num_hidden_layers * 2 * kv * e;
  const bool cuda = config.model.device.rfind("cuda", 0) == 0;
  const int64_t limit = static_cast<int64_t>(options.memory_gib * double(int64_t{1} << 30));
  const int64_t group = shape.num_attention_heads / shape.num_key_value_heads;
  nlohmann::json c;
  c["weights"] = params * e;
  c["gradients"] = params * e;
  c["optimizer_state"] = optimizer_state_bytes_per_element(config.train.optimizer, bf16) * params;
  c["optimizer_step_temporaries"] = optimizer_step_temporary_bytes(largest_parameter_numel(shape));
  c["cuda_context_allowance"] = cuda ? kCudaContextAllowance : 0;
  int64_t pool_tokens = 0;
  if (config.rollout.kv_cache_tokens > 0) {
    pool_tokens = (config.rollout.kv_cache_tokens + block - 1) / block * block;
  } else if (config.rollout.kv_cache_memory_fraction > 0) {
    // The fraction of what is free when the rollout starts: the memory less the weights, the
    // optimiser state and the context (gradients are released by then).
    const int64_t free = limit - params * e - c["optimizer_state"].get<int64_t>() -
                         c["cuda_context_allowance"].get<int64_t>();
    const auto budget = static_cast<int64_t>(config.rollout.kv_cache_memory_fraction *
                                             static_cast<double>(std::max<int64_t>(0, free)));
    pool_tokens = budget / (token_bytes * block) * block;
  } else {
    pool_tokens = (slots * cache_tokens + block - 1) / block * block;
  }
  c["rollout_kv_cache"] = pool_tokens * token_bytes;
  // A decode step (qwen2.cpp extend). rollout.decode_attention = torch: each layer gathers every
  // live branch's keys and values up to the longest length, plus the float32 additive mask SDPA
  // makes; paged_kernel reads the blocks in place and needs only the CUDA kernel's split-K
  // workspace (paged_attention.cu: float32 partial outputs, maxima and sums per 256-key partition).
  c["decode_attention_transients"] =
      config.rollout.decode_attention == "paged_kernel"
          ? kFloat * slots * shape.num_attention_heads * ((cache_tokens + 255) / 256) *
                (shape.head_dim() + 2)
          : 2 * slots * cache_tokens * kv * e + kFloat * slots * group * cache_tokens;
  // sampler.cpp: float32 logits, log_softmax, the penalised scores, the masked scores, their
  // softmax and the draw's cumsum, the bool seen/compare masks: [live, vocab] each; plus an int64
  // [live, vocab] that the top-p sort of the vocabulary took before top-p ran on the top-k
  // survivors (kept: the sort returns with top-k off).
  c["sampler_buffers"] = slots * shape.vocab_size * (e + 6 * kFloat + kInt64 + 2 * kBool);
  const std::vector<int32_t> tree =
      synthetic_tree(options.prompt_tokens, options.tree_tokens, config.rollout.max_answer_tokens,
                     config.rollout.max_depth);
  const std::vector<int64_t> level_nodes = synthetic_level_nodes(
      options.tree_tokens, config.rollout.max_answer_tokens, config.rollout.max_depth);
  // train.max_tokens_per_forward: the largest piece's forward is what is alive at once.
  model::PackedTree packed;
  packed.parent = tree;
  packed.tokens.assign(tree.size(), 0);
  TreeForwardBytes t;
  int64_t pieces = 0, forwarded = 0;
  for (const model::TreePiece& piece :
       model::split_tree(packed, config.train.max_tokens_per_forward)) {
    const TreeForwardBytes b =
        plan_tree_forward_bytes(shape, e, config.train.gradient_checkpointing, piece.tree.parent);
    if (b.peak() > t.peak()) t = b;
    ++pieces;
    forwarded += static_cast<int64_t>(piece.tree.tokens.size());
  }
  c["training_activations"] = t.peak() - t.lm_head_chunks();
  c["lm_head_chunks"] = t.lm_head_chunks();

  auto sum = [&](std::initializer_list<const char*> keys) {
    int64_t total = 0;
    for (const char* k : keys) total += c[k].get<int64_t>();
    return total;
  };
  const int64_t base = sum({"weights", "optimizer_state", "cuda_context_allowance"});
  nlohmann::json phases;
  phases["rollout"] = base + c["rollout_kv_cache"].get<int64_t>() +
                      std::max(c["decode_attention_transients"].get<int64_t>(),
                               c["sampler_buffers"].get<int64_t>());
  phases["train_forward_backward"] = base + c["gradients"].get<int64_t>() + t.peak();
  phases["optimizer_step"] = base + sum({"gradients", "optimizer_step_temporaries"});
  std::string peak_phase;
  int64_t peak = -1;
  for (const auto& [name, bytes] : phases.items()) {
    if (bytes.get<int64_t>() > peak) peak = bytes.get<int64_t>(), peak_phase = name;
  }
  nlohmann::json out;
  out["components"] = c;
  out["phases"] = phases;
  out["peak_bytes"] = peak;
  out["peak_phase"] = peak_phase;
  out["memory_bytes"] = limit;
  out["fits"] = peak <= limit;
  out["assumptions"] = {
      {"parameters", params},
      {"dtype", config.model.dtype},
      {"optimizer", config.train.optimizer},
      {"gradient_checkpointing", config.train.gradient_checkpointing},
      {"max_tokens_per_forward", config.train.max_tokens_per_forward},
      {"forward_pieces", pieces},
      {"forward_tokens_per_pass", forwarded},
      {"prompt_tokens", options.prompt_tokens},
      {"tree_tokens", options.tree_tokens},
      {"tree", "a prompt, then rollout.max_depth levels of nodes of max_answer_tokens / max_depth "
               "tokens (every root-to-leaf answer max_answer_tokens long): one node, then each "
               "level's count the one above's times a constant branching factor, so that the "
               "nodes hold about tree_tokens"},
      {"tree_level_nodes", level_nodes},
      {"tree_leaves", level_nodes.back()},
      {"tree_unique_tokens", static_cast<int64_t>(tree.size())},
      {"live_branches", slots},
      {"kv_cache_tokens_per_slot", cache_tokens},
      {"kv_pool_tokens", pool_tokens},
      {"kv_pool", config.rollout.kv_cache_tokens > 0 ? "rollout.kv_cache_tokens"
                  : config.rollout.kv_cache_memory_fraction > 0
                      ? "rollout.kv_cache_memory_fraction of the memory less weights, optimizer "
                        "state and the CUDA context allowance"
                      : "max_live_branches x kv_cache_tokens_per_slot (a dense cache's size)"},
      {"autocast", "not modelled: activations are counted in model.dtype"},
      {"gradients", "released by the optimiser step, so not live during rollout"}};
  return out.dump(2);
}

} // namespace treerpo::train
