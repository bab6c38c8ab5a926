// `treerpo-train bench decode-attention`: paged decode attention (model/paged_attention.h) on a
// seeded random block pool, against its CPU path and against the LibTorch-ops path it replaces
// (gather each sequence's blocks, then SDPA): the largest differences, milliseconds, and the key
// and value bytes read per second, on CUDA beside the device's copy bandwidth. One JSON object.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/types.h>

#include "command.h"
#include "device_options.h"
#include "treerpo/model/paged_attention.h"
#include "treerpo/util/cuda_build.h"
#include "treerpo/util/error.h"
#include "treerpo/util/rng.h"

namespace treerpo::cli {
namespace {

const char* const kWhere = "bench decode-attention";

struct DecodeAttentionOptions {
  std::string device = "cpu", dtype = "float32", batches = "64,128,256";
  int64_t context = 1024, heads = 12, kv_heads = 2, head_dim = 128, block_tokens = 16;
  int64_t repeats = 20;
  uint64_t seed = 1;
};

// One batch's inputs, on the benchmark's device and dtype.
struct Inputs {
  torch::Tensor q, key_pool, value_pool, block_tables, lengths;
  int64_t max_length = 0, total_length = 0;
};

std::vector<int64_t> parse_batches(const std::string& list) {
  std::vector<int64_t> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    size_t used = 0;
    int64_t b = 0;
    try {
      b = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || b < 1) {
      throw bad_input("batch size '" + item + "' is not a positive integer", "--batch",
                      "use a comma-separated list, e.g. --batch 64,128,256");
    }
    out.push_back(b);
  }
  if (out.empty()) throw bad_input("no batch size", "--batch", "use e.g. --batch 64,128,256");
  return out;
}

// Pairs of sequences are forks: the second shares the first's first half of blocks, as the
// rollout's tree branches do. Physical blocks are shuffled, lengths drawn from the last eighth of
// the context. Drawn on the CPU in float32, so every device and dtype sees the same numbers.
Inputs random_inputs(const DecodeAttentionOptions& o, int64_t batch, torch::Device device,
                     torch::Dtype dtype) {
  const uint64_t seed = derive_seed(o.seed, static_cast<uint64_t>(batch));
  SplitMix64 rng(seed);
  const int64_t width = (o.context + o.block_tokens - 1) / o.block_tokens;
  const int64_t shared = width / 2;
  const int64_t forks = batch / 2;
  const int64_t blocks = batch * width - forks * shared;
  const std::vector<int64_t> physical = permutation(blocks, seed);
  torch::Tensor tables = torch::empty({batch, width}, torch::kInt32);
  torch::Tensor lengths = torch::empty({batch}, torch::kInt32);
  auto* t = tables.data_ptr<int32_t>();
  auto* len = lengths.data_ptr<int32_t>();
  int64_t next = 0;
  Inputs in;
  for (int64_t b = 0; b < batch; ++b) {
    const bool fork = b % 2 == 1;
    for (int64_t j = 0; j < width; ++j) {
      t[b * width + j] =
          static_cast<int32_t>(fork && j < shared ? t[(b - 1) * width + j] : physical[next++]);
    }
    const int64_t shortest = std::max<int64_t>(1, o.context - o.context / 8);
    len[b] = static_cast<int32_t>(shortest + static_cast<int64_t>(rng.below(
                                                 static_cast<uint64_t>(o.context - shortest + 1))));
    in.max_length = std::max<int64_t>(in.max_length, len[b]);
    in.total_length += len[b];
  }
  torch::manual_seed(seed);
  const auto pool = [&] {
    return torch::randn({blocks, o.block_tokens, o.kv_heads, o.head_dim}).to(device, dtype);
  };
  in.q = torch::randn({batch, o.heads, o.head_dim}).to(device, dtype);
  in.key_pool = pool();
  in.value_pool = pool();
  in.block_tables = tables.to(device);
  in.lengths = lengths.to(device);
  return in;
}

// The LibTorch-ops path: gather each sequence's blocks into [batch, kv_heads, positions,
// head_dim], mask the positions past its length, and run SDPA with each GQA group as a query
// length.
torch::Tensor torch_gather_attention(const Inputs& in) {
  const int64_t batch = in.q.size(0), heads = in.q.size(1), head_dim = in.q.size(2);
  const int64_t kv_heads = in.key_pool.size(2);
  const int64_t positions = in.block_tables.size(1) * in.key_pool.size(1);
  const torch::Tensor index = in.block_tables.flatten();
  auto gather = [&](const torch::Tensor& pool) {
    return pool.index_select(0, index).view({batch, positions, kv_heads, head_dim}).transpose(1, 2);
  };
  const torch::Tensor mask =
      (torch::arange(positions, in.lengths.options()).unsqueeze(0) < in.lengths.unsqueeze(1))
          .view({batch, 1, 1, positions});
  const torch::Tensor q = in.q.view({batch, kv_heads, heads / kv_heads, head_dim});
  return at::scaled_dot_product_attention(q, gather(in.key_pool), gather(in.value_pool), mask)
      .reshape({batch, heads, head_dim});
}

void synchronize(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

// Mean milliseconds of `repeats` calls after one warm-up call, the device idle at both ends.
double mean_ms(const std::function<void()>& call, torch::Device device, int64_t repeats) {
  call();
  synchronize(device);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < repeats; ++r) call();
  synchronize(device);
  const std::chrono::duration<double, std::milli> elapsed =
      std::chrono::steady_clock::now() - start;
  return elapsed.count() / static_cast<double>(repeats);
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.cpu().to(torch::kFloat32) - b.cpu().to(torch::kFloat32)).abs().max().item<double>();
}

// Device-to-device copy of 1 GiB, bytes read plus bytes written per second: the bandwidth a
// kernel that streams its inputs once can hope for.
double copy_gb_per_s(torch::Device device, int64_t repeats) {
  const int64_t bytes = int64_t{1} << 30;
  const torch::Tensor src = torch::empty({bytes}, torch::dtype(torch::kUInt8).device(device));
  torch::Tensor dst = torch::empty_like(src);
  const double ms = mean_ms([&] { dst.copy_(src); }, device, repeats);
  return 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
}

void validate(const DecodeAttentionOptions& o, torch::Device device) {
  if (device.is_cuda() && !cuda_build().compiled) {
    throw bad_input("this binary was built without its CUDA kernels", "--device",
                    "use --device cpu, or build against a CUDA LibTorch");
  }
  if (o.context < 1 || o.heads < 1 || o.kv_heads < 1 || o.head_dim < 1 || o.block_tokens < 1 ||
      o.repeats < 1) {
    throw bad_input("--context, --heads, --kv-heads, --head-dim, --block-tokens and --repeats "
                    "must be positive",
                    kWhere, "use e.g. --context 1024 --heads 12 --kv-heads 2 --head-dim 128");
  }
  if (o.heads % o.kv_heads != 0) {
    throw bad_input("--heads " + std::to_string(o.heads) + " is not a multiple of --kv-heads " +
                        std::to_string(o.kv_heads),
                    kWhere, "use e.g. --heads 12 --kv-heads 2");
  }
  // The head sizes src/model/cuda/paged_attention.cu is instantiated for.
  if (device.is_cuda() && o.head_dim != 64 && o.head_dim != 128) {
    throw bad_input("the CUDA kernel is not built for head_dim " + std::to_string(o.head_dim),
                    "--head-dim", "use 64 or 128, or --device cpu");
  }
}

void run_bench(const DecodeAttentionOptions& o) {
  const torch::Device device = parse_device(o.device);
  const torch::Dtype dtype = parse_dtype(o.dtype);
  const std::vector<int64_t> batches = parse_batches(o.batches);
  validate(o, device);
  const int64_t element_bytes = static_cast<int64_t>(c10::elementSize(dtype));
  nlohmann::json j = {{"bench", "decode-attention"},
                      {"device", o.device},
                      {"dtype", o.dtype},
                      {"context", o.context},
                      {"heads", o.heads},
                      {"kv_heads", o.kv_heads},
                      {"head_dim", o.head_dim},
                      {"block_tokens", o.block_tokens},
                      {"repeats", o.repeats},
                      {"seed", o.seed}};
  if (device.is_cpu()) {
    // The CPU path's speed follows the intra-op threads it spreads its sequences over.
    j["cpu_threads"] = at::get_num_threads();
    j["cpu_path_uses_threads"] = model::paged_decode_attention_cpu_uses_threads();
  }
  double copy = 0;
  if (device.is_cuda()) {
    copy = copy_gb_per_s(device, o.repeats);
    j["copy_gb_per_s"] = copy;
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const int64_t batch : batches) {
    const Inputs in = random_inputs(o, batch, device, dtype);
    torch::Tensor paged, gathered;
    const double ms_paged = mean_ms(
        [&] {
          paged = model::paged_decode_attention(in.q, in.key_pool, in.value_pool, in.block_tables,
                                                in.lengths, in.max_length);
        },
        device, o.repeats);
    const double ms_torch =
        mean_ms([&] { gathered = torch_gather_attention(in); }, device, o.repeats);
    double vs_cpu = 0;
    if (!device.is_cpu()) {
      vs_cpu = max_abs_diff(paged, model::paged_decode_attention_cpu(
                                       in.q.cpu(), in.key_pool.cpu(), in.value_pool.cpu(),
                                       in.block_tables.cpu(), in.lengths.cpu()));
    }
    const int64_t kv_bytes = in.total_length * o.kv_heads * o.head_dim * 2 * element_bytes;
    const double gb_per_s = static_cast<double>(kv_bytes) / (ms_paged * 1e-3) / 1e9;
    nlohmann::json row = {{"batch", batch},
                          {"max_length", in.max_length},
                          {"max_abs_diff_vs_cpu_path", vs_cpu},
                          {"max_abs_diff_vs_torch_gather", max_abs_diff(paged, gathered)},
                          {"ms_paged", ms_paged},
                          {"ms_torch_gather", ms_torch},
                          {"speedup_vs_torch_gather", ms_torch / ms_paged},
                          {"kv_bytes_read", kv_bytes},
                          {"achieved_gb_per_s", gb_per_s}};
    if (device.is_cuda()) row["roofline_fraction"] = gb_per_s / copy;
    rows.push_back(row);
  }
  j["batches"] = rows;
  j["note"] = "ms: mean of --repeats calls after a warm-up, device synchronised around them; "
              "kv_bytes_read: sum of lengths x kv_heads x head_dim x 2 (keys and values) x element "
              "size; copy_gb_per_s: a 1 GiB device-to-device copy, bytes read plus written; on "
              "the CPU the paged path is the CPU path (max_abs_diff_vs_cpu_path 0)";
  std::printf("%s\n", j.dump().c_str());
}

} // namespace

void add_bench_decode_attention_command(CLI::App& app) {
  static DecodeAttentionOptions o;
  auto* b = bench_subcommand(app)->add_subcommand(
      "decode-attention",
      "Paged decode attention against its CPU path and the gather + SDPA path: error and speed");
  b->add_option("--device", o.device, "cpu | cuda | cuda:N");
  b->add_option("--dtype", o.dtype, "float32 | bfloat16");
  b->add_option("--batch", o.batches, "Comma-separated batch sizes (default 64,128,256)");
  b->add_option("--context", o.context, "Tokens per sequence (lengths drawn from its last 1/8)");
  b->add_option("--heads", o.heads, "Query heads (default 12, Qwen2.5-Math-1.5B)");
  b->add_option("--kv-heads", o.kv_heads, "Key/value heads (default 2)");
  b->add_option("--head-dim", o.head_dim, "Head size (default 128)");
  b->add_option("--block-tokens", o.block_tokens, "Tokens per KV block (default 16)");
  b->add_option("--repeats", o.repeats, "Timed calls per path (default 20)");
  b->add_option("--seed", o.seed, "Seed of the pool, tables, lengths and queries");
  b->callback([] { run_bench(o); });
}

} // namespace treerpo::cli
