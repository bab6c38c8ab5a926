#pragma once
// One packed tree's share of a TreeRPO step: the packed forward, the clipped policy loss and its
// backward into the policy's gradients. With train.max_tokens_per_forward the forward runs on the
// tree's pieces (model/tree_pieces.h) in two passes: log-probs of every token without autograd,
// the loss and its gradient with respect to those log-probs (cheap: [tokens]), then each piece's
// forward again with autograd, back-propagating that gradient through its owned tokens. The loss
// is a sum of per-token terms whose weights depend only on counts, so the gradients equal the
// whole tree's; only one piece's activations are alive at a time, for one more forward's time.
#include <cstdint>

#include "treerpo/model/qwen2.h"
#include "treerpo/rl/loss.h"
#include "treerpo/rl/pack.h"
#include "treerpo/util/autocast.h"

namespace treerpo::train {

struct TreeLossSetup {
  const rl::LossOptions& options;
  model::Qwen2* reference = nullptr;  // the frozen KL reference, when train.kl_coef > 0
  AutocastState precision;            // the training forward's autocast (train.autocast)
  int64_t max_tokens_per_forward = 0; // 0: the whole tree in one forward
};

// Accumulates d(weight * loss)/d(parameters) into the policy's .grad; returns the loss (detached
// when pieces were used) and its statistics.
rl::LossResult tree_loss_backward(model::Qwen2& policy, const rl::PackedBatch& packed,
                                  const TreeLossSetup& setup, double weight);

} // namespace treerpo::train
