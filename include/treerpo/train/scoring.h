#pragma once
// Rewards and credit of one grown tree: each leaf's root-to-leaf text is checked against the gold
// answer (reward 1/0), then the credit rule fills interior rewards and every node's advantage.
#include <vector>

#include "treerpo/config/config.h"
#include "treerpo/rl/credit.h"
#include "treerpo/rollout/tree.h"

namespace treerpo::train {

// The credit rule and its options for a run: rollout.algorithm, train.loss_agg,
// train.std_normalize.
rl::CreditOptions credit_options(const Config& config);

// Scores every tree of a step and assigns the run's credit (credit_options); with
// train.whiten_advantages (treepo) the advantages are then whitened over all of them.
std::vector<std::vector<rl::SpanCredit>> score_trees(std::vector<rollout::Tree>& trees,
                                                     const Config& config);

// Returns each node's credit, as rl::assign_credit.
std::vector<rl::SpanCredit> score_tree(rollout::Tree& tree, const rl::CreditOptions& credit);

} // namespace treerpo::train
