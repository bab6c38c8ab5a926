#include "treerpo/model/tree_levels.h"

#include <algorithm>

namespace treerpo::model {

std::vector<TreeSegment> tree_segments(const std::vector<int32_t>& parent) {
  const auto n = static_cast<int64_t>(parent.size());
  std::vector<int64_t> depth(static_cast<size_t>(n)), segment_of(static_cast<size_t>(n));
  std::vector<TreeSegment> segments;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t p = parent[static_cast<size_t>(i)];
    depth[static_cast<size_t>(i)] = p < 0 ? 0 : depth[static_cast<size_t>(p)] + 1;
    if (i > 0 && p == i - 1) {
      ++segments.back().length;
    } else {
      const int64_t level =
          p < 0 ? 0 : segments[static_cast<size_t>(segment_of[static_cast<size_t>(p)])].level + 1;
      segments.push_back({i, 1, depth[static_cast<size_t>(i)], level});
    }
    segment_of[static_cast<size_t>(i)] = static_cast<int64_t>(segments.size()) - 1;
  }
  return segments;
}

LevelBatching LevelBatching::for_shape(int64_t hidden_size, int64_t kv_width) {
  LevelBatching b;
  b.context_weight = 2.0 * static_cast<double>(kv_width) / static_cast<double>(hidden_size);
  return b;
}

std::vector<LevelBatch> level_batches(const std::vector<TreeSegment>& segments,
                                      const LevelBatching& batching) {
  std::vector<int64_t> order(segments.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<int64_t>(k);
  // By level; within a level longest span first, then deepest context, then token order.
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const TreeSegment &x = segments[static_cast<size_t>(a)], &y = segments[static_cast<size_t>(b)];
    if (x.level != y.level) return x.level < y.level;
    if (x.length != y.length) return x.length > y.length;
    if (x.depth != y.depth) return x.depth > y.depth;
    return a < b;
  });
  std::vector<LevelBatch> batches;
  double real_cost = 0; // of the open batch (the last one)
  for (int64_t k : order) {
    const TreeSegment& s = segments[static_cast<size_t>(k)];
    const double own = static_cast<double>(s.length) + batching.context_weight * s.depth;
    bool joins = !batches.empty() && batches.back().level == s.level;
    if (joins) {
      const LevelBatch& open = batches.back();
      const auto count = static_cast<double>(open.segments.size() + 1);
      const auto span = static_cast<double>(std::max(open.span, s.length));
      const auto context = static_cast<double>(std::max(open.context, s.depth));
      const double real = real_cost + own;
      const double padded = count * (span + batching.context_weight * context);
      joins = padded - real <= std::max(batching.slack * real, batching.allowance_rows);
    }
    if (!joins) {
      batches.push_back({s.level, {}, 0, 0, 0});
      real_cost = 0;
    }
    LevelBatch& b = batches.back();
    b.segments.push_back(k);
    b.span = std::max(b.span, s.length);
    b.context = std::max(b.context, s.depth);
    b.tokens += s.length;
    real_cost += own;
  }
  // Token order inside a batch: a level that stays one batch runs exactly as before batching.
  for (LevelBatch& b : batches) std::sort(b.segments.begin(), b.segments.end());
  return batches;
}

} // namespace treerpo::model
