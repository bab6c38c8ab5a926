#pragma once
// The LM head's log-prob of one chosen token per row, without ever holding [rows, vocab] logits
// for all rows: Qwen2.5's 151,936-entry vocabulary makes them the largest activation of a training
// step (8k tree tokens: 4.9 GB of float32 log-softmax saved for the backward, as much again for
// its gradient).
#include <torch/types.h>

namespace treerpo::model {

// log softmax(x W^T)[i, targets[i]] in float32 for x [N, hidden] (final-normed hidden states),
// W [vocab, hidden] (the LM head), targets [N] (int64). Rows are processed `chunk_rows` at a time
// in the forward and again in the backward, which recomputes each chunk's logits from x, W and the
// saved per-row log-sum-exp: one autograd node, gradients for x and W as log_softmax + gather
// would give. The matmuls run under the autocast state the forward saw. chunk_rows <= 0 picks
// about 256 MB of float32 logits per chunk.
torch::Tensor token_logprobs(const torch::Tensor& x, const torch::Tensor& weight,
                             const torch::Tensor& targets, int64_t chunk_rows = 0);

} // namespace treerpo::model
