#include "bpe.h"

#include <algorithm>
#include <atomic>

#include "byte_level.h"
#include "treerpo/util/error.h"

namespace treerpo::tokenizer {
namespace {

// HF caches words shorter than this; longer ones rarely repeat.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCachedWords = 1 << 17;

struct WordCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, std::vector<int32_t>> ids;
};

// One cache per thread: lookups take no lock, and encode() stays safe to call from many threads.
WordCache& thread_cache(uint64_t owner) {
  thread_local WordCache cache;
  if (cache.owner != owner || cache.ids.size() >= kMaxCachedWords) {
    cache.ids.clear();
    cache.owner = owner;
  }
  return cache;
}

std::atomic<uint64_t> next_uid{1};

} // namespace

void Bpe::PairTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  keys.assign(cap, ~0ull);
  values.assign(cap, Merge{});
  mask = cap - 1;
}

static inline uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return k;
}

void Bpe::PairTable::insert(uint64_t key, Merge m) {
  for (uint64_t i = mix(key) & mask;; i = (i + 1) & mask) {
    if (keys[i] == ~0ull) {
      keys[i] = key;
      values[i] = m;
      return;
    }
    if (keys[i] == key) return; // a repeated merge keeps its first (lowest) rank, as HF does
  }
}

Bpe::Merge Bpe::PairTable::find(uint64_t key) const {
  for (uint64_t i = mix(key) & mask;; i = (i + 1) & mask) {
    if (keys[i] == key) return values[i];
    if (keys[i] == ~0ull) return Merge{};
  }
}

Bpe::Bpe(std::unordered_map<std::string, int32_t> vocab,
         const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
         const std::string& source)
    : vocab_(std::move(vocab)), ignore_merges_(ignore_merges), uid_(next_uid++) {
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(std::string(1, static_cast<char>(b)));
    if (it == vocab_.end()) {
      throw bad_input("byte-level vocabulary lacks the token for byte " + std::to_string(b) +
                          " ('" + byte_to_symbol(static_cast<unsigned char>(b)) + "')",
                      source, "use a complete byte-level BPE tokenizer.json");
    }
    byte_id_[b] = it->second;
  }
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end() || iab == vocab_.end()) {
      throw bad_input("merge " + std::to_string(rank) + " (\"" + bytes_to_symbols(a) + "\", \"" +
                          bytes_to_symbols(b) + "\") uses a token that is not in the vocabulary",
                      source, "regenerate the tokenizer.json");
    }
    merges_.insert(pair_key(ia->second, ib->second),
                   Merge{static_cast<int32_t>(rank), iab->second});
  }
}

std::optional<int32_t> Bpe::id_of(std::string_view bytes) const {
  auto it = vocab_.find(std::string(bytes));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() == 1) {
    out.push_back(byte_id_[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (word.size() >= kMaxCachedWordBytes) {
    merge_word(word, out);
    return;
  }
  WordCache& cache = thread_cache(uid_);
  std::string key(word);
  auto it = cache.ids.find(key);
  if (it != cache.ids.end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
    return;
  }
  const size_t first = out.size();
  merge_word(word, out);
  cache.ids.emplace(std::move(key), std::vector<int32_t>(out.begin() + first, out.end()));
}

// Lowest rank first, leftmost among equal ranks, over a linked list of symbols with a binary heap
// of candidate pairs (stale entries are skipped when popped): HF's word merge, O(n log n).
void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    auto it = vocab_.find(std::string(word));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  struct Symbol {
    int32_t id, prev, next;
  };
  struct Candidate {
    int32_t rank, pos, left, right;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  const int32_t n = static_cast<int32_t>(word.size());
  symbols.resize(n);
  heap.clear();
  const auto push = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    const Merge m = merges_.find(pair_key(symbols[pos].id, symbols[next].id));
    if (m.rank < 0) return;
    heap.push_back({m.rank, pos, symbols[pos].id, symbols[next].id});
    std::push_heap(heap.begin(), heap.end(), std::greater<>());
  };
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = {byte_id_[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = symbols[c.pos];
    if (left.id != c.left || left.next < 0 || symbols[left.next].id != c.right) continue;
    const int32_t right = left.next;
    left.id = merges_.find(pair_key(c.left, c.right)).id;
    left.next = symbols[right].next;
    if (left.next >= 0) symbols[left.next].prev = c.pos;
    symbols[right].id = -1; // dead
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

} // namespace treerpo::tokenizer
