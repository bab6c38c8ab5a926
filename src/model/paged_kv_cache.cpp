#include "treerpo/model/paged_kv_cache.h"

#include <set>
#include <string>

#include "treerpo/util/error.h"

namespace treerpo::model {

namespace {
const char* const kWhere = "paged KV cache";
}

PagedKvCache::PagedKvCache(const Qwen2Config& cfg, int64_t blocks, int64_t block_tokens,
                           torch::Dtype dtype, torch::Device device)
    : block_tokens_(block_tokens) {
  if (blocks <= 0 || block_tokens <= 0) {
    throw runtime_failure("a paged KV cache needs at least one block of at least one token",
                          "PagedKvCache(blocks=" + std::to_string(blocks) +
                              ", block_tokens=" + std::to_string(block_tokens) + ")");
  }
  auto options = torch::TensorOptions().dtype(dtype).device(device);
  // Zeros, not empty: rows past a sequence's length enter the attention matmul masked, and
  // 0 * NaN would be NaN.
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    keys.push_back(
        torch::zeros({blocks, block_tokens, cfg.num_key_value_heads, cfg.head_dim()}, options));
    values.push_back(torch::zeros_like(keys.back()));
  }
  refs_.assign(static_cast<size_t>(blocks), 0);
  fill_.assign(static_cast<size_t>(blocks), 0);
  for (int64_t b = blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

PagedKvCache::Sequence& PagedKvCache::at(int64_t seq) {
  if (seq < 0) throw runtime_failure("sequence " + std::to_string(seq) + " is negative", kWhere);
  if (static_cast<size_t>(seq) >= seqs_.size()) seqs_.resize(static_cast<size_t>(seq) + 1);
  return seqs_[static_cast<size_t>(seq)];
}

const PagedKvCache::Sequence& PagedKvCache::at(int64_t seq) const {
  static const Sequence empty;
  if (seq < 0) throw runtime_failure("sequence " + std::to_string(seq) + " is negative", kWhere);
  return static_cast<size_t>(seq) < seqs_.size() ? seqs_[static_cast<size_t>(seq)] : empty;
}

int64_t PagedKvCache::length(int64_t seq) const {
  return at(seq).length;
}

const std::vector<int32_t>& PagedKvCache::table(int64_t seq) const {
  return at(seq).blocks;
}

bool PagedKvCache::must_copy_last(const Sequence& s) const {
  const int64_t used = s.length % block_tokens_;
  if (used == 0) return false;
  const auto last = static_cast<size_t>(s.blocks.back());
  return refs_[last] > 1 && fill_[last] != used;
}

void PagedKvCache::claim(const Sequence& s, int64_t from, int64_t to) {
  for (int64_t i = from / block_tokens_; i * block_tokens_ < to; ++i) {
    fill_[static_cast<size_t>(s.blocks[static_cast<size_t>(i)])] =
        static_cast<int32_t>(std::min(block_tokens_, to - i * block_tokens_));
  }
}

int64_t PagedKvCache::blocks_to_append(int64_t seq, int64_t n) const {
  return blocks_to_append(std::vector<int64_t>{seq}, std::vector<int64_t>{n});
}

int64_t PagedKvCache::blocks_to_append(const std::vector<int64_t>& seqs,
                                       const std::vector<int64_t>& counts) const {
  std::set<int32_t> claimed; // partial blocks an earlier sequence of the batch appends to in place
  int64_t take = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const Sequence& s = at(seqs[i]);
    const int64_t n = counts.at(i);
    const int64_t needed = (s.length + n + block_tokens_ - 1) / block_tokens_;
    take += std::max<int64_t>(0, needed - static_cast<int64_t>(s.blocks.size()));
    if (n == 0 || s.length % block_tokens_ == 0) continue;
    if (must_copy_last(s) || !claimed.insert(s.blocks.back()).second) take += 1;
  }
  return take;
}

int32_t PagedKvCache::take_block() {
  if (free_.empty()) throw runtime_failure("no free KV block", kWhere);
  const int32_t b = free_.back();
  free_.pop_back();
  refs_[static_cast<size_t>(b)] = 1;
  fill_[static_cast<size_t>(b)] = 0;
  return b;
}

int32_t PagedKvCache::scratch_block() {
  if (scratch_ < 0) scratch_ = take_block();
  return scratch_;
}

void PagedKvCache::unref(int32_t block) {
  if (--refs_[static_cast<size_t>(block)] == 0) free_.push_back(block);
}

void PagedKvCache::copy_block(int32_t from, int32_t to) {
  torch::NoGradGuard no_grad;
  for (size_t l = 0; l < keys.size(); ++l) {
    keys[l][to].copy_(keys[l][from]);
    values[l][to].copy_(values[l][from]);
  }
}

void PagedKvCache::fork(int64_t src, int64_t dst) {
  if (src == dst) return;
  const Sequence& s = at(src);
  if (s.out) throw runtime_failure("cannot fork a swapped-out sequence", kWhere);
  Sequence& d = at(dst);
  if (d.length != 0 || !d.blocks.empty()) {
    throw runtime_failure("fork into sequence " + std::to_string(dst) + ", which is not empty",
                          kWhere);
  }
  const Sequence& again = at(src); // at(dst) may have grown seqs_
  d.blocks = again.blocks;
  d.length = again.length;
  for (int32_t b : d.blocks) refs_[static_cast<size_t>(b)] += 1;
}

void PagedKvCache::release(int64_t seq) {
  Sequence& s = at(seq);
  std::vector<bool> on_host(s.blocks.size(), false);
  for (size_t e : s.host_entries) on_host[e] = true;
  for (size_t i = 0; i < s.blocks.size(); ++i) {
    if (!on_host[i]) unref(s.blocks[i]);
  }
  s = Sequence{};
}

void PagedKvCache::reserve(int64_t seq, int64_t n) {
  const int64_t take = blocks_to_append(seq, n);
  if (take > free_blocks()) {
    throw runtime_failure("the KV pool has " + std::to_string(free_blocks()) +
                              " free blocks, appending " + std::to_string(n) + " tokens to " +
                              "sequence " + std::to_string(seq) + " needs " + std::to_string(take),
                          kWhere);
  }
  Sequence& s = at(seq);
  if (s.out) throw runtime_failure("cannot append to a swapped-out sequence", kWhere);
  if (n > 0 && must_copy_last(s)) {
    const int32_t shared = s.blocks.back();
    const int32_t own = take_block();
    copy_block(shared, own);
    unref(shared);
    s.blocks.back() = own;
  }
  const int64_t needed = (s.length + n + block_tokens_ - 1) / block_tokens_;
  while (static_cast<int64_t>(s.blocks.size()) < needed) s.blocks.push_back(take_block());
  if (n > 0) claim(s, s.length, s.length + n);
}

void PagedKvCache::commit(int64_t seq, int64_t n) {
  Sequence& s = at(seq);
  if (s.length + n > static_cast<int64_t>(s.blocks.size()) * block_tokens_) {
    throw runtime_failure("commit past the reserved blocks of sequence " + std::to_string(seq),
                          kWhere);
  }
  s.length += n;
}

int64_t PagedKvCache::block_of(int64_t seq, int64_t position) const {
  const Sequence& s = at(seq);
  return s.blocks.at(static_cast<size_t>(position / block_tokens_));
}

void PagedKvCache::swap_out(int64_t seq) {
  Sequence& s = at(seq);
  if (s.out) return;
  torch::NoGradGuard no_grad;
  s.host_keys.assign(keys.size(), {});
  s.host_values.assign(keys.size(), {});
  for (size_t i = 0; i < s.blocks.size(); ++i) {
    const int32_t b = s.blocks[i];
    if (refs_[static_cast<size_t>(b)] != 1) continue; // shared: stays for the others
    s.host_entries.push_back(i);
    for (size_t l = 0; l < keys.size(); ++l) {
      s.host_keys[l].push_back(keys[l][b].to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true));
      s.host_values[l].push_back(
          values[l][b].to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true));
    }
    unref(b);
  }
  s.out = true;
}

bool PagedKvCache::swapped(int64_t seq) const {
  return at(seq).out;
}

int64_t PagedKvCache::blocks_to_swap_in(int64_t seq) const {
  return static_cast<int64_t>(at(seq).host_entries.size());
}

void PagedKvCache::swap_in(int64_t seq) {
  Sequence& s = at(seq);
  if (!s.out) return;
  if (blocks_to_swap_in(seq) > free_blocks()) {
    throw runtime_failure("the KV pool has " + std::to_string(free_blocks()) +
                              " free blocks, swapping sequence " + std::to_string(seq) +
                              " in needs " + std::to_string(blocks_to_swap_in(seq)),
                          kWhere);
  }
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < s.host_entries.size(); ++k) {
    const int32_t b = take_block();
    for (size_t l = 0; l < keys.size(); ++l) {
      keys[l][b].copy_(s.host_keys[l][k]);
      values[l][b].copy_(s.host_values[l][k]);
    }
    s.blocks[s.host_entries[k]] = b;
    // A restored block is the sequence's own, written up to its length.
    const auto start = static_cast<int64_t>(s.host_entries[k]) * block_tokens_;
    fill_[static_cast<size_t>(b)] = static_cast<int32_t>(std::min(block_tokens_, s.length - start));
  }
  s.host_entries.clear();
  s.host_keys.clear();
  s.host_values.clear();
  s.out = false;
}

} // namespace treerpo::model
