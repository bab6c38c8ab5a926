#pragma once
// Paged KV cache (DESIGN §5, vLLM's PagedAttention layout): per layer, one pool of fixed-size
// blocks of keys and values; each sequence is a block table plus a length. Blocks are reference
// counted: a fork copies the parent's table and shares every block, the shared partial last block
// included. A block remembers how far it is written (its fill); a sequence whose length is the
// fill of its partial last block appends in place, since no other holder reads past its own
// length, and a holder behind the fill copies the block first (copy on write). So of the
// branches forking mid-block the first to write keeps the block and only the others copy it,
// and a tree's prefix is stored once however many branches continue from it.
//
// Sequences are handles (any id >= 0; tables grow on first use). A sequence can be swapped out:
// the blocks only it holds move to host memory and return to the pool, and swap_in brings them
// back bit for bit, so a branch preempted for space continues exactly where it stopped.
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "treerpo/model/config.h"

namespace treerpo::model {

class PagedKvCache {
public:
  PagedKvCache(const Qwen2Config& cfg, int64_t blocks, int64_t block_tokens, torch::Dtype dtype,
               torch::Device device);

  int64_t block_tokens() const { return block_tokens_; }
  // Blocks of the pool, those free, and those sequences hold (a scratch block is none of these
  // last two).
  int64_t total_blocks() const { return static_cast<int64_t>(refs_.size()); }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t held_blocks() const { return total_blocks() - free_blocks() - (scratch_ >= 0 ? 1 : 0); }
  // A block taken from the pool for good, that no sequence will ever hold: where fixed-shape
  // decode (model/decode_graphs.h) writes the keys and values of its padding rows. The same block
  // on every call. Throws runtime_failure when no block is free.
  int32_t scratch_block();
  int64_t length(int64_t seq) const;
  // Blocks appending n tokens to seq takes from the pool: new blocks plus the copy of a shared
  // partial last block that another holder has written past seq's length.
  int64_t blocks_to_append(int64_t seq, int64_t n) const;
  // The same for a batch reserved in this order: of the sequences at the fill of one shared partial
  // block, the first appends in place and the others copy.
  int64_t blocks_to_append(const std::vector<int64_t>& seqs,
                           const std::vector<int64_t>& counts) const;

  // dst (empty) shares every block of src; no bytes move.
  void fork(int64_t src, int64_t dst);
  // The sequence's blocks are released (freed when nobody else holds them); its length is 0.
  void release(int64_t seq);
  // Makes room for n more tokens of seq (claims them): copies a shared partial last block written
  // past seq's length by another holder, and takes new blocks.
  // Throws runtime_failure when the pool has fewer than blocks_to_append(seq, n) free blocks.
  void reserve(int64_t seq, int64_t n);
  // Advances seq's length by n (after its keys and values for those positions are written).
  void commit(int64_t seq, int64_t n);

  // Preemption. swap_out moves the blocks only seq holds to host memory and frees them;
  // blocks_to_swap_in is how many it takes back; swap_in restores them (throws when the pool is
  // short). A swapped-out sequence may only be swapped in or released.
  void swap_out(int64_t seq);
  bool swapped(int64_t seq) const;
  int64_t blocks_to_swap_in(int64_t seq) const;
  void swap_in(int64_t seq);

  // For the forward: the block that holds position p of seq, and seq's block table.
  int64_t block_of(int64_t seq, int64_t position) const;
  int64_t ref_count(int64_t block) const { return refs_.at(static_cast<size_t>(block)); }
  // Positions of the block claimed by its holders so far.
  int64_t fill(int64_t block) const { return fill_.at(static_cast<size_t>(block)); }
  const std::vector<int32_t>& table(int64_t seq) const;

  // Per layer: [blocks, block_tokens, kv_heads, head_dim].
  std::vector<torch::Tensor> keys, values;

private:
  struct Sequence {
    std::vector<int32_t> blocks;
    int64_t length = 0;
    // Swapped out: for each table entry moved to the host, its index and per-layer host copies
    // (keys then values, [layers][block_tokens, kv_heads, head_dim]).
    std::vector<size_t> host_entries;
    std::vector<std::vector<torch::Tensor>> host_keys, host_values;
    bool out = false;
  };
  Sequence& at(int64_t seq);
  const Sequence& at(int64_t seq) const;
  int32_t take_block();
  void unref(int32_t block);
  void copy_block(int32_t from, int32_t to);
  // True when appending to seq must first copy its partial last block.
  bool must_copy_last(const Sequence& s) const;
  // Positions [from, to) of seq are written by it: their blocks' fill reaches them.
  void claim(const Sequence& s, int64_t from, int64_t to);

  int64_t block_tokens_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> fill_;
  std::vector<int32_t> free_; // a stack: the most recently freed block is reused first
  int32_t scratch_ = -1;
  std::vector<Sequence> seqs_;
};

} // namespace treerpo::model
