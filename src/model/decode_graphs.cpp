#include "treerpo/model/decode_graphs.h"

#include <map>
#include <set>
#include <string>

#include <c10/core/Allocator.h>
#include <c10/core/GradMode.h>

#include "treerpo/util/error.h"
#include "treerpo/util/host_transfer.h"

#ifdef TREERPO_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace treerpo::model {

namespace {

const char* const kWhere = "fixed-shape decode";

// The step's input buffer: these sections of max_bucket rows each, then the block tables
// [max_bucket, width].
enum Section : int64_t { kIds, kPositions, kWriteBlocks, kWriteOffsets, kLengths, kSections };

} // namespace

struct DecodeGraphs::Impl {
  struct Bucket {
    torch::Tensor hidden; // the graph's output [bucket, hidden], rewritten by every replay
#ifdef TREERPO_WITH_CUDA
    std::unique_ptr<at::cuda::CUDAGraph> graph;
#endif
  };

  const Qwen2& model;
  PagedKvCache& cache;
  int64_t max_batch = 0, max_bucket = 0, max_length = 0, width = 0;
  bool capture = false;
  int32_t scratch = -1;
  std::vector<int64_t> host; // the next step's inputs, laid out as `inputs`
  torch::Tensor inputs;      // int64 on the model's device, the addresses the graphs read
  std::map<int64_t, Bucket> buckets;
  c10::MempoolId_t pool{0, 0};
  int64_t graphs = 0;

  Impl(const Qwen2& m, PagedKvCache& c) : model(m), cache(c) {}

  int64_t& at(Section s, int64_t row) {
    return host[static_cast<size_t>(s * max_bucket + row)];
  }
  int64_t& table_at(int64_t row, int64_t j) {
    return host[static_cast<size_t>(kSections * max_bucket + row * width + j)];
  }

  // The step of the first `bucket` rows of `inputs`.
  torch::Tensor run(int64_t bucket) {
    auto section = [&](Section s) { return inputs.narrow(0, s * max_bucket, bucket); };
    torch::Tensor tables = inputs.narrow(0, kSections * max_bucket, max_bucket * width)
                               .view({max_bucket, width})
                               .narrow(0, 0, bucket);
    return model.decode_hidden(cache,
                               {section(kIds), section(kPositions), section(kWriteBlocks),
                                section(kWriteOffsets), tables.to(torch::kInt32),
                                section(kLengths).to(torch::kInt32)},
                               max_length);
  }

  // The last layer's output of the step in `inputs`: replayed, or run (and captured for next
  // time).
  torch::Tensor hidden(int64_t bucket) {
#ifdef TREERPO_WITH_CUDA
    if (capture) {
      Bucket& b = buckets[bucket];
      if (b.graph) {
        b.graph->replay();
        return b.hidden;
      }
      // The first step of this size runs eagerly, then is recorded (a capture runs nothing), both
      // on a side stream: capture needs one, and the eager run sets up what the capture uses
      // (cuBLAS workspaces).
      const c10::DeviceIndex index = inputs.device().index();
      c10::cuda::device_synchronize();
      torch::Tensor out;
      {
        c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool(false, index));
        out = run(bucket);
        c10::cuda::getCurrentCUDAStream(index).synchronize();
        if (pool == c10::MempoolId_t{0, 0}) pool = at::cuda::graph_pool_handle();
        b.graph = std::make_unique<at::cuda::CUDAGraph>();
        b.graph->capture_begin(pool);
        b.hidden = run(bucket);
        b.graph->capture_end();
      }
      ++graphs;
      return out;
    }
#endif
    return run(bucket);
  }
};

DecodeGraphs::DecodeGraphs(const Qwen2& model, PagedKvCache& cache, int64_t max_batch,
                           int64_t max_length, bool capture)
    : impl_(std::make_unique<Impl>(model, cache)) {
  Impl& m = *impl_;
  if (max_batch < 1 || max_length < 1) {
    throw runtime_failure("needs at least one sequence of at least one token",
                          "DecodeGraphs(max_batch=" + std::to_string(max_batch) +
                              ", max_length=" + std::to_string(max_length) + ")");
  }
  const torch::Device device = cache.keys.front().device();
  if (capture && !device.is_cuda()) {
    throw runtime_failure("CUDA graphs need a CUDA device, not " + device.str(), kWhere,
                          "set rollout.cuda_graphs: false");
  }
#ifndef TREERPO_WITH_CUDA
  if (capture) {
    throw runtime_failure("this build has no CUDA", kWhere, "set rollout.cuda_graphs: false");
  }
#endif
  m.max_batch = max_batch;
  m.max_bucket = bucket_for(max_batch);
  m.max_length = max_length;
  m.width = (max_length + cache.block_tokens() - 1) / cache.block_tokens();
  m.capture = capture;
  m.scratch = cache.scratch_block();
  m.host.assign(static_cast<size_t>(m.max_bucket * (kSections + m.width)), 0);
  m.inputs = torch::zeros({static_cast<int64_t>(m.host.size())},
                          torch::TensorOptions().dtype(torch::kInt64).device(device));
}

DecodeGraphs::~DecodeGraphs() = default;

int64_t DecodeGraphs::bucket_for(int64_t batch) {
  if (batch <= 1) return 1;
  if (batch <= 8) {
    int64_t b = 2;
    while (b < batch) b *= 2;
    return b;
  }
  return (batch + 7) / 8 * 8;
}

int64_t DecodeGraphs::graphs() const {
  return impl_->graphs;
}

torch::Tensor DecodeGraphs::decode(const std::vector<int64_t>& seqs,
                                   const std::vector<int32_t>& tokens) {
  Impl& m = *impl_;
  const auto batch = static_cast<int64_t>(seqs.size());
  if (seqs.size() != tokens.size()) {
    throw runtime_failure("got " + std::to_string(seqs.size()) + " sequences for " +
                              std::to_string(tokens.size()) + " tokens",
                          kWhere);
  }
  if (batch == 0) return torch::empty({0, m.model.config().vocab_size});
  if (batch > m.max_batch) {
    throw runtime_failure("a step of " + std::to_string(batch) + " sequences, at most " +
                              std::to_string(m.max_batch) + " were planned",
                          kWhere);
  }
  std::set<int64_t> seen;
  const int64_t bs = m.cache.block_tokens();
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t seq = seqs[static_cast<size_t>(b)], token = tokens[static_cast<size_t>(b)];
    if (!seen.insert(seq).second)
      throw runtime_failure("sequence " + std::to_string(seq) + " appears twice", kWhere);
    if (token < 0 || token >= m.model.config().vocab_size)
      throw runtime_failure("token id " + std::to_string(token) + " outside the vocabulary",
                            kWhere);
    if (m.cache.length(seq) + 1 > m.max_length) {
      throw runtime_failure("sequence " + std::to_string(seq) + " would hold " +
                                std::to_string(m.cache.length(seq) + 1) + " tokens, at most " +
                                std::to_string(m.max_length) + " were planned",
                            kWhere);
    }
  }
  const int64_t needed = m.cache.blocks_to_append(seqs, std::vector<int64_t>(seqs.size(), 1));
  if (needed > m.cache.free_blocks()) {
    throw runtime_failure("the batch needs " + std::to_string(needed) + " KV blocks, " +
                              std::to_string(m.cache.free_blocks()) + " are free",
                          kWhere, "raise rollout.kv_cache_tokens");
  }
  // The inputs: real rows, then padding rows writing to and reading the scratch block.
  const int64_t bucket = bucket_for(batch);
  for (int64_t b = 0; b < bucket; ++b) {
    const bool real = b < batch;
    const int64_t seq = real ? seqs[static_cast<size_t>(b)] : -1;
    const int64_t past = real ? m.cache.length(seq) : 0;
    if (real) m.cache.reserve(seq, 1);
    m.at(kIds, b) = real ? tokens[static_cast<size_t>(b)] : 0;
    m.at(kPositions, b) = past;
    m.at(kWriteBlocks, b) = real ? m.cache.block_of(seq, past) : m.scratch;
    m.at(kWriteOffsets, b) = past % bs;
    m.at(kLengths, b) = past + 1;
    if (real) {
      const std::vector<int32_t>& table = m.cache.table(seq);
      for (size_t j = 0; j < table.size(); ++j) m.table_at(b, static_cast<int64_t>(j)) = table[j];
    } else {
      m.table_at(b, 0) = m.scratch;
    }
  }
  m.inputs.copy_(to_device(m.host, m.inputs.device()), /*non_blocking=*/true);
  torch::Tensor out;
  {
    c10::NoGradGuard no_grad;
    out = m.model.logits(m.hidden(bucket).narrow(0, 0, batch));
  }
  for (int64_t seq : seqs) m.cache.commit(seq, 1);
  return out;
}

} // namespace treerpo::model
