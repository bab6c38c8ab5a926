#include "treerpo/model/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "treerpo/util/error.h"
#include "treerpo/util/exp_approx.h"

#ifdef TREERPO_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "cuda/paged_attention_cuda.h"
#endif

namespace treerpo::model {

namespace {

const char* const kWhere = "paged decode attention";

void check_inputs(const torch::Tensor& q, const torch::Tensor& key_pool,
                  const torch::Tensor& value_pool, const torch::Tensor& block_tables,
                  const torch::Tensor& lengths) {
  auto fail = [](const std::string& what) { throw runtime_failure(what, kWhere); };
  if (q.dim() != 3) fail("q must be [batch, heads, head_dim]");
  if (key_pool.dim() != 4 || !key_pool.sizes().equals(value_pool.sizes()))
    fail("key and value pools must both be [blocks, block_tokens, kv_heads, head_dim]");
  if (key_pool.size(3) != q.size(2)) fail("q and the pools differ in head_dim");
  if (q.size(1) % key_pool.size(2) != 0) fail("query heads must be a multiple of kv heads");
  if (block_tables.dim() != 2 || block_tables.size(0) != q.size(0) ||
      block_tables.scalar_type() != torch::kInt32)
    fail("block_tables must be int32 [batch, width]");
  if (lengths.dim() != 1 || lengths.size(0) != q.size(0) || lengths.scalar_type() != torch::kInt32)
    fail("lengths must be int32 [batch]");
  if (q.scalar_type() != key_pool.scalar_type() || q.scalar_type() != value_pool.scalar_type())
    fail("q and the pools must share one dtype");
  const auto device = q.device();
  for (const torch::Tensor* t : {&key_pool, &value_pool, &block_tables, &lengths}) {
    if (t->device() != device) fail("every input must be on q's device");
  }
}

// Eight partial sums, so the compiler vectorises the loops without reordering a float sum.
constexpr int64_t kLanes = 8;

// Inlined: called once per (position, query head) with head sizes as small as 16.
[[gnu::always_inline]] inline float dot(const float* a, const float* b, int64_t n) {
  float part[kLanes] = {};
  int64_t d = 0;
  for (; d + kLanes <= n; d += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) part[j] += a[d + j] * b[d + j];
  }
  float sum = 0.0f;
  for (; d < n; ++d) sum += a[d] * b[d];
  for (float p : part) sum += p;
  return sum;
}

// Softmax's numerator in place, exp(x - max(x)), returning its sum: three loops the compiler
// vectorises (a libm call per score did not, and was a third of this path's time).
float exp_minus_max(float* x, int64_t n) {
  float top[kLanes];
  for (float& t : top) t = x[0];
  int64_t p = 0;
  for (; p + kLanes <= n; p += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) top[j] = x[p + j] > top[j] ? x[p + j] : top[j];
  }
  float max = x[0];
  for (; p < n; ++p) max = x[p] > max ? x[p] : max;
  for (float t : top) max = t > max ? t : max;
  for (p = 0; p < n; ++p) x[p] = exp_approx(x[p] - max);
  float part[kLanes] = {};
  for (p = 0; p + kLanes <= n; p += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) part[j] += x[p + j];
  }
  float sum = 0.0f;
  for (; p < n; ++p) sum += x[p];
  for (float s : part) sum += s;
  return sum;
}

void add_scaled(float w, const float* x, float* y, int64_t n) {
  for (int64_t d = 0; d < n; ++d) y[d] += w * x[d];
}

// A pool row as float32: the row itself, or its conversion into `buffer`.
template <typename T> const float* as_float(const T* row, int64_t n, std::vector<float>& buffer) {
  if constexpr (std::is_same_v<T, float>) {
    return row;
  } else {
    for (int64_t d = 0; d < n; ++d) buffer[static_cast<size_t>(d)] = static_cast<float>(row[d]);
    return buffer.data();
  }
}

// Per-thread scratch of attend_one.
struct Scratch {
  std::vector<float> q, scores, acc, row, total;
};

// Calls f(p, row) for positions p = 0 .. length-1 of one kv head in table order, row pointing at
// the position's head_dim elements in `pool`: block by block, so no position needs a division.
template <typename T, typename F>
void for_each_row(const T* pool, const int32_t* table, int64_t length, int64_t block_tokens,
                  int64_t kv_heads, int64_t kv_head, int64_t head_dim, F&& f) {
  const int64_t stride = kv_heads * head_dim;
  for (int64_t first = 0, j = 0; first < length; first += block_tokens, ++j) {
    const T* r =
        pool + (static_cast<int64_t>(table[j]) * block_tokens * kv_heads + kv_head) * head_dim;
    const int64_t end = std::min(length, first + block_tokens);
    for (int64_t p = first; p < end; ++p, r += stride) f(p, r);
  }
}

// One (sequence, kv head): its `group` query heads read the keys once into per-head scores, then
// softmax in float32 (max subtracted, as SDPA does) and a weighted sum of the values.
template <typename T>
void attend_one(const T* q, const T* keys, const T* values, const int32_t* table, int64_t length,
                int64_t block_tokens, int64_t kv_heads, int64_t kv_head, int64_t group,
                int64_t head_dim, float scale, T* out, Scratch& s) {
  s.q.resize(static_cast<size_t>(group * head_dim));
  s.row.resize(static_cast<size_t>(head_dim));
  s.scores.assign(static_cast<size_t>(group * length), 0.0f);
  s.acc.assign(static_cast<size_t>(group * head_dim), 0.0f);
  s.total.assign(static_cast<size_t>(group), 0.0f);
  for (int64_t i = 0; i < group * head_dim; ++i)
    s.q[static_cast<size_t>(i)] = static_cast<float>(q[i]);
  for_each_row(keys, table, length, block_tokens, kv_heads, kv_head, head_dim,
               [&](int64_t p, const T* r) {
                 const float* k = as_float(r, head_dim, s.row);
                 for (int64_t h = 0; h < group; ++h) {
                   s.scores[static_cast<size_t>(h * length + p)] =
                       dot(s.q.data() + h * head_dim, k, head_dim) * scale;
                 }
               });
  for (int64_t h = 0; h < group; ++h) {
    s.total[static_cast<size_t>(h)] = exp_minus_max(s.scores.data() + h * length, length);
  }
  for_each_row(values, table, length, block_tokens, kv_heads, kv_head, head_dim,
               [&](int64_t p, const T* r) {
                 const float* v = as_float(r, head_dim, s.row);
                 for (int64_t h = 0; h < group; ++h) {
                   add_scaled(s.scores[static_cast<size_t>(h * length + p)], v,
                              s.acc.data() + h * head_dim, head_dim);
                 }
               });
  for (int64_t h = 0; h < group; ++h) {
    const float inv = 1.0f / s.total[static_cast<size_t>(h)];
    for (int64_t d = 0; d < head_dim; ++d) {
      out[h * head_dim + d] = static_cast<T>(s.acc[static_cast<size_t>(h * head_dim + d)] * inv);
    }
  }
}

#ifdef TREERPO_WITH_CUDA
torch::Tensor paged_decode_attention_cuda(const torch::Tensor& q, const torch::Tensor& key_pool,
                                          const torch::Tensor& value_pool,
                                          const torch::Tensor& block_tables,
                                          const torch::Tensor& lengths, int64_t max_length) {
  const int64_t head_dim = q.size(2);
  if (!cuda::paged_decode_supports_head_dim(head_dim)) {
    throw runtime_failure("the CUDA paged decode attention kernel is not built for head_dim " +
                              std::to_string(head_dim),
                          kWhere, "set rollout.decode_attention: torch");
  }
  if (max_length < 0) max_length = lengths.max().item<int64_t>();
  cuda::PagedDecodeArgs a;
  switch (q.scalar_type()) {
  case torch::kFloat32:
    a.dtype = cuda::Dtype::Float32;
    break;
  case torch::kBFloat16:
    a.dtype = cuda::Dtype::BFloat16;
    break;
  case torch::kFloat16:
    a.dtype = cuda::Dtype::Float16;
    break;
  default:
    throw runtime_failure("unsupported dtype for paged decode attention", kWhere);
  }
  const torch::Tensor qc = q.contiguous(), kc = key_pool.contiguous(), vc = value_pool.contiguous(),
                      tc = block_tables.contiguous(), lc = lengths.contiguous();
  torch::Tensor out = torch::empty_like(qc);
  a.q = qc.data_ptr();
  a.key_pool = kc.data_ptr();
  a.value_pool = vc.data_ptr();
  a.block_tables = tc.data_ptr<int32_t>();
  a.lengths = lc.data_ptr<int32_t>();
  a.out = out.data_ptr();
  a.batch = q.size(0);
  a.heads = q.size(1);
  a.kv_heads = key_pool.size(2);
  a.head_dim = head_dim;
  a.block_tokens = key_pool.size(1);
  a.table_width = block_tables.size(1);
  a.max_length = max_length;
  a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  const int64_t floats =
      cuda::paged_decode_workspace_floats(a.batch, a.heads, head_dim, max_length);
  torch::Tensor workspace;
  if (floats > 0) {
    workspace = torch::empty({floats}, q.options().dtype(torch::kFloat32));
    a.workspace = workspace.data_ptr<float>();
  }
  const cudaError_t err =
      cuda::paged_decode_attention(a, c10::cuda::getCurrentCUDAStream(q.device().index()));
  if (err != cudaSuccess) {
    throw runtime_failure(std::string("CUDA launch failed: ") + cudaGetErrorString(err), kWhere);
  }
  return out;
}
#endif

} // namespace

DecodeAttention decode_attention_from_name(const std::string& name) {
  if (name == "torch") return DecodeAttention::Torch;
  if (name == "paged_kernel") return DecodeAttention::PagedKernel;
  throw bad_input("unknown decode attention '" + name + "'", "rollout.decode_attention",
                  "use torch or paged_kernel");
}

const char* decode_attention_name(DecodeAttention mode) {
  return mode == DecodeAttention::Torch ? "torch" : "paged_kernel";
}

torch::Tensor paged_decode_attention_cpu(const torch::Tensor& q, const torch::Tensor& key_pool,
                                         const torch::Tensor& value_pool,
                                         const torch::Tensor& block_tables,
                                         const torch::Tensor& lengths) {
  check_inputs(q, key_pool, value_pool, block_tables, lengths);
  if (!q.device().is_cpu()) throw runtime_failure("the CPU path needs CPU tensors", kWhere);
  const int64_t batch = q.size(0), heads = q.size(1), head_dim = q.size(2);
  const int64_t block_tokens = key_pool.size(1), kv_heads = key_pool.size(2);
  const int64_t width = block_tables.size(1), group = heads / kv_heads;
  const torch::Tensor qc = q.contiguous(), kc = key_pool.contiguous(), vc = value_pool.contiguous(),
                      tc = block_tables.contiguous(), lc = lengths.contiguous();
  const int32_t* len = lc.data_ptr<int32_t>();
  const int32_t* tables = tc.data_ptr<int32_t>();
  const int64_t blocks = key_pool.size(0);
  for (int64_t b = 0; b < batch; ++b) {
    if (len[b] < 1 || len[b] > width * block_tokens)
      throw runtime_failure("sequence " + std::to_string(b) + " has length " +
                                std::to_string(len[b]) + " outside its block table",
                            kWhere);
    for (int64_t j = 0; j < (len[b] + block_tokens - 1) / block_tokens; ++j) {
      const int32_t block = tables[b * width + j];
      if (block < 0 || block >= blocks)
        throw runtime_failure("block " + std::to_string(block) + " outside the pool", kWhere);
    }
  }
  torch::Tensor out = torch::empty_like(qc);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, q.scalar_type(), "paged_decode_attention_cpu", [&] {
        const scalar_t* qp = qc.data_ptr<scalar_t>();
        const scalar_t* kp = kc.data_ptr<scalar_t>();
        const scalar_t* vp = vc.data_ptr<scalar_t>();
        scalar_t* op = out.data_ptr<scalar_t>();
        at::parallel_for(0, batch * kv_heads, 1, [&](int64_t begin, int64_t end) {
          Scratch scratch;
          for (int64_t i = begin; i < end; ++i) {
            const int64_t b = i / kv_heads, g = i % kv_heads;
            const int64_t first = (b * heads + g * group) * head_dim;
            attend_one(qp + first, kp, vp, tables + b * width, len[b], block_tokens, kv_heads, g,
                       group, head_dim, scale, op + first, scratch);
          }
        });
      });
  return out;
}

bool paged_decode_attention_cpu_uses_threads() {
#ifdef INTRA_OP_PARALLEL
  return true;
#else
  return false;
#endif
}

torch::Tensor paged_decode_attention(const torch::Tensor& q, const torch::Tensor& key_pool,
                                     const torch::Tensor& value_pool,
                                     const torch::Tensor& block_tables,
                                     const torch::Tensor& lengths, int64_t max_length) {
  if (q.device().is_cpu()) {
    return paged_decode_attention_cpu(q, key_pool, value_pool, block_tables, lengths);
  }
  check_inputs(q, key_pool, value_pool, block_tables, lengths);
#ifdef TREERPO_WITH_CUDA
  if (q.device().is_cuda()) {
    return paged_decode_attention_cuda(q, key_pool, value_pool, block_tables, lengths, max_length);
  }
#endif
  (void)max_length;
  throw runtime_failure("no paged decode attention kernel for device " + q.device().str(), kWhere,
                        "set rollout.decode_attention: torch");
}

} // namespace treerpo::model
