#pragma once
// How the packed tree forward batches a tree (DESIGN §5). The tree is cut into segments (maximal
// runs in which each token's parent is the token before it); a segment's level is one more than
// its parent segment's. A level's segments need only earlier levels' keys/values, so a level runs
// as one or more batches, each padding its segments to its longest span and gathering ancestors up
// to its deepest context. One batch per level would pad every segment of an uneven level (a real
// tree mixes spans of ten and a thousand tokens) to the longest; instead a level is cut by length:
// its segments, longest span first, join the open batch while that batch's padding stays within
// LevelBatching's bound, and start a new batch when it would not.
#include <cstdint>
#include <limits>
#include <vector>

namespace treerpo::model {

struct TreeSegment {
  int64_t first = 0;  // tree index of the segment's first token
  int64_t length = 0; // its tokens: first, first + 1, ...
  int64_t depth = 0;  // the first token's depth: the ancestors the segment attends to
  int64_t level = 0;
};

// The segments of a tree given by its parents, in token order. Each parent must come before its
// child (parent[i] < i; -1 for a root): callers check.
std::vector<TreeSegment> tree_segments(const std::vector<int32_t>& parent);

// The padding a batch may carry. Its cost, in rows: rows plus context_weight x ancestor positions
// (a gathered ancestor holds a key and a value row per layer where a row holds a hidden state).
// A segment joins the open batch when the batch's padded cost minus its real cost stays within
// max(slack x real cost, allowance_rows); below the allowance a further batch costs more (a pass of
// every layer) than the padding it saves.
struct LevelBatching {
  double context_weight = 0;
  double slack = 0.125;
  double allowance_rows = 256;

  // For a model shape: context_weight = 2 x kv width / hidden size.
  static LevelBatching for_shape(int64_t hidden_size, int64_t kv_width);
  // One batch per level, every segment padded to the level's longest (the layout before batches).
  static LevelBatching one_per_level() {
    return {0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  }
};

struct LevelBatch {
  int64_t level = 0;
  std::vector<int64_t> segments; // indices into the segment list, ascending (token order)
  int64_t span = 0;              // the longest segment's length: the padded rows per segment
  int64_t context = 0;           // the deepest first token's depth: the padded ancestors
  int64_t tokens = 0;            // real tokens (the segments' lengths summed)
  int64_t padded_rows() const { return static_cast<int64_t>(segments.size()) * span; }
};

// The batches in the order they run: by level, then longest span first. Every segment is in
// exactly one batch.
std::vector<LevelBatch> level_batches(const std::vector<TreeSegment>& segments,
                                      const LevelBatching& batching);

} // namespace treerpo::model
