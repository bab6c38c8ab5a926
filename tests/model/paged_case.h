#pragma once
// The inputs of a paged decode attention call, shared by the CPU path's tests and the CUDA kernel's
// simulated ones.
#include <cmath>
#include <set>
#include <utility>

#include <torch/types.h>

namespace treerpo::model::testing {

struct PagedCase {
  torch::Tensor q, keys, values, tables, lengths;
};

// NaN in every pool row that no sequence reaches within its length: an attention that reads past a
// length then shows it.
inline void fill_unread_rows_with_nan(PagedCase& c) {
  const int64_t block_tokens = c.keys.size(1);
  std::set<std::pair<int64_t, int64_t>> used;
  for (int64_t b = 0; b < c.lengths.size(0); ++b) {
    for (int64_t p = 0; p < c.lengths[b].item<int64_t>(); ++p) {
      used.insert({c.tables[b][p / block_tokens].item<int64_t>(), p % block_tokens});
    }
  }
  for (int64_t block = 0; block < c.keys.size(0); ++block) {
    for (int64_t row = 0; row < block_tokens; ++row) {
      if (used.count({block, row})) continue;
      c.keys[block][row].fill_(NAN);
      c.values[block][row].fill_(NAN);
    }
  }
}

} // namespace treerpo::model::testing
