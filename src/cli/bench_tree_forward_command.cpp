// `treerpo-train bench tree-forward`: seconds and peak allocated bytes of the packed tree forward +
// backward (the training step's model work) with gradient checkpointing on and off, and (on) with
// every level run as one padded batch instead of batches of similar length, on a seeded random
// tree and a random-weight (or given) Qwen2.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/autograd.h>
#include <torch/types.h>

#include "command.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/model/tree_levels.h"
#include "treerpo/util/allocation_counter.h"
#include "treerpo/util/device_memory.h"
#include "treerpo/util/error.h"
#include "treerpo/util/rng.h"

namespace treerpo::cli {
namespace {

struct TreeForwardOptions {
  int64_t hidden = 256, layers = 8, heads = 8, kv_heads = 2, intermediate = 1024, vocab = 4096;
  std::string model, device = "cpu", dtype = "float32";
  int64_t prompt = 64, children = 8, depth = 2, span = 64, repeats = 3;
  double spread = 0; // each child's span uniform in [span x (1 - spread), span x (1 + spread)]
  uint64_t seed = 1;
};

// A prompt, then `children` children of about `span` tokens under every node for `depth` levels.
model::PackedTree random_tree(const TreeForwardOptions& o, int64_t vocab) {
  SplitMix64 rng(o.seed);
  model::PackedTree t;
  auto add_span = [&](int32_t parent, int64_t length) {
    for (int64_t i = 0; i < length; ++i) {
      t.tokens.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab))));
      t.parent.push_back(parent);
      parent = static_cast<int32_t>(t.tokens.size()) - 1;
    }
    return parent; // the span's last token
  };
  std::vector<int32_t> ends{add_span(-1, o.prompt)};
  for (int64_t level = 0; level < o.depth; ++level) {
    std::vector<int32_t> next;
    for (int32_t end : ends) {
      for (int64_t c = 0; c < o.children; ++c) {
        int64_t length = o.span;
        if (o.spread > 0) { // no draw otherwise: the uniform tree's tokens stay what they were
          const double low = static_cast<double>(o.span) * (1.0 - o.spread);
          const double width = 2.0 * static_cast<double>(o.span) * o.spread;
          const double u = static_cast<double>(rng.below(1u << 20)) / (1u << 20);
          length = std::max<int64_t>(1, std::llround(low + width * u));
        }
        next.push_back(add_span(end, length));
      }
    }
    ends = std::move(next);
  }
  return t;
}

struct Variant {
  double seconds = 0;
  int64_t peak_bytes = 0; // allocated beyond what was live at the variant's start
  std::vector<torch::Tensor> grads;
};

Variant run_variant(model::Qwen2& model, const model::PackedTree& tree,
                    const torch::Tensor& weights, bool checkpointing, int64_t repeats) {
  model.set_gradient_checkpointing(checkpointing);
  Variant v;
  const torch::Device device = weights.device();
  reset_allocated_peak(device);
  const int64_t before = allocated_peak_bytes(device).value_or(0);
  std::vector<double> seconds;
  for (int64_t r = 0; r < repeats; ++r) {
    v.grads.clear();
    const auto start = std::chrono::steady_clock::now();
    torch::Tensor loss = (model.tree_logprobs(tree) * weights).sum();
    v.grads = torch::autograd::grad({loss}, model.parameters());
    v.grads.front().sum().item<double>(); // waits for the device
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(seconds.begin(), seconds.begin() + repeats / 2, seconds.end());
  v.seconds = seconds[static_cast<size_t>(repeats / 2)];
  v.peak_bytes = allocated_peak_bytes(device).value_or(0) - before;
  return v;
}

void run_bench(const TreeForwardOptions& o) {
  const std::string where = "bench tree-forward";
  if (o.prompt < 1 || o.children < 1 || o.depth < 0 || o.span < 1 || o.repeats < 1) {
    throw bad_input("tree shape and repeats must be positive (depth may be 0)", where,
                    "use e.g. --prompt 64 --children 8 --depth 2 --span 64 --repeats 3");
  }
  if (!(o.spread >= 0 && o.spread < 1)) {
    throw bad_input("--spread must be in [0, 1), got " + std::to_string(o.spread), where,
                    "use e.g. --spread 0.9 for spans from a tenth to nearly twice --span");
  }
  if (o.dtype != "float32" && o.dtype != "bfloat16") {
    throw bad_input("unknown --dtype '" + o.dtype + "'", where, "use float32 or bfloat16");
  }
  // Before any tensor exists: on the CPU every allocation is counted (util/allocation_counter.h).
  AllocationCounter::install();
  const torch::Device device(o.device);
  const torch::Dtype dtype = o.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  model::Qwen2Config c;
  c.vocab_size = o.vocab;
  c.hidden_size = o.hidden;
  c.intermediate_size = o.intermediate;
  c.num_hidden_layers = o.layers;
  c.num_attention_heads = o.heads;
  c.num_key_value_heads = o.kv_heads;
  const int64_t positions = o.prompt + o.depth * o.span;
  c.max_position_embeddings = std::max<int64_t>(4096, positions);
  model::Qwen2 model = o.model.empty() ? model::Qwen2::random(c, o.seed, dtype, device)
                                       : model::Qwen2::load(o.model, dtype, device);
  const model::PackedTree tree = random_tree(o, model.config().vocab_size);
  const auto n = static_cast<int64_t>(tree.tokens.size());
  torch::manual_seed(o.seed);
  const torch::Tensor weights = torch::randn({n}).to(device);

  // ON first: what it leaves cached cannot inflate OFF, which needs more; one padded batch per
  // level (checkpointing on) last, as it needs more than ON.
  const Variant on = run_variant(model, tree, weights, true, o.repeats);
  const Variant off = run_variant(model, tree, weights, false, o.repeats);
  const model::LevelBatching batching = model.level_batching();
  model.set_level_batching(model::LevelBatching::one_per_level());
  const Variant padded = run_variant(model, tree, weights, true, o.repeats);
  model.set_level_batching(batching);
  auto max_diff = [](const Variant& a, const Variant& b) {
    double d = 0;
    for (size_t i = 0; i < a.grads.size(); ++i) {
      d = std::max(d, (a.grads[i] - b.grads[i]).abs().max().to(torch::kFloat64).item<double>());
    }
    return d;
  };
  // Rows each layout runs (real tokens + padding) and its batches.
  const std::vector<model::TreeSegment> segments = model::tree_segments(tree.parent);
  auto rows_and_batches = [&](const model::LevelBatching& b) {
    int64_t rows = 0;
    const auto batches = model::level_batches(segments, b);
    for (const model::LevelBatch& l : batches) rows += l.padded_rows();
    return std::make_pair(rows, static_cast<int64_t>(batches.size()));
  };
  const auto [rows, batches] = rows_and_batches(batching);
  const auto [padded_rows, levels] = rows_and_batches(model::LevelBatching::one_per_level());
  nlohmann::json j = {
      {"bench", "tree-forward"},
      {"device", o.device},
      {"dtype", o.dtype},
      {"tokens", n},
      {"layers", model.config().num_hidden_layers},
      {"hidden", model.config().hidden_size},
      {"tree",
       {{"prompt", o.prompt},
        {"children", o.children},
        {"depth", o.depth},
        {"span", o.span},
        {"spread", o.spread}}},
      {"repeats", o.repeats},
      {"seconds_on", on.seconds},
      {"seconds_off", off.seconds},
      {"time_ratio", on.seconds / off.seconds},
      {"peak_bytes_on", on.peak_bytes},
      {"peak_bytes_off", off.peak_bytes},
      {"memory_ratio",
       off.peak_bytes > 0 ? static_cast<double>(on.peak_bytes) / off.peak_bytes : 0.0},
      {"max_grad_diff", max_diff(on, off)},
      {"batches", batches},
      {"forward_rows", rows},
      {"one_per_level",
       {{"batches", levels},
        {"forward_rows", padded_rows},
        {"seconds", padded.seconds},
        {"peak_bytes", padded.peak_bytes},
        {"time_ratio", on.seconds / padded.seconds},
        {"memory_ratio",
         padded.peak_bytes > 0 ? static_cast<double>(on.peak_bytes) / padded.peak_bytes : 0.0},
        {"max_grad_diff", max_diff(on, padded)}}},
      {"peak_note", "allocated bytes (the CPU's AllocationCounter, CUDA's caching allocator) at "
                    "the variant's peak beyond those live at its start: saved activations and "
                    "transients, gradients included; forward_rows: tokens the layers run, "
                    "padding included; one_per_level: checkpointing on, every level one batch "
                    "padded to its longest span (ratios: batched over it)"}};
  std::printf("%s\n", j.dump().c_str());
}

} // namespace

void add_bench_tree_forward_command(CLI::App& app) {
  static TreeForwardOptions o;
  auto* b = bench_subcommand(app)->add_subcommand(
      "tree-forward", "Packed tree forward + backward with gradient checkpointing on and off");
  b->add_option("--model", o.model, "Hugging Face model folder (default: random weights)");
  b->add_option("--hidden", o.hidden, "random model: hidden size");
  b->add_option("--layers", o.layers, "random model: decoder layers");
  b->add_option("--heads", o.heads, "random model: attention heads");
  b->add_option("--kv-heads", o.kv_heads, "random model: key/value heads");
  b->add_option("--intermediate", o.intermediate, "random model: MLP size");
  b->add_option("--vocab", o.vocab, "random model: vocabulary size");
  b->add_option("--device", o.device, "cpu | cuda");
  b->add_option("--dtype", o.dtype, "float32 | bfloat16");
  b->add_option("--prompt", o.prompt, "prompt tokens");
  b->add_option("--children", o.children, "children of every node");
  b->add_option("--depth", o.depth, "levels below the prompt");
  b->add_option("--span", o.span, "tokens of every child (the mean with --spread)");
  b->add_option("--spread", o.spread,
                "spans uniform in [span x (1 - spread), span x (1 + spread)] (default 0)");
  b->add_option("--repeats", o.repeats, "timed runs per variant (median reported)");
  b->add_option("--seed", o.seed, "seed of weights, tree and loss weights");
  b->callback([] { run_bench(o); });
}

} // namespace treerpo::cli
