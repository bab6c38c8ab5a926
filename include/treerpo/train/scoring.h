#pragma once
// Rewards and credit of one grown tree: each leaf's root-to-leaf text is checked against the gold
// answer (reward 1/0), then the credit rule fills interior rewards and every node's advantage.
#include <vector>

#include "treerpo/rl/credit.h"
#include "treerpo/rollout/tree.h"

namespace treerpo::train {

// Returns each node's credit, as rl::assign_credit.
std::vector<rl::SpanCredit> score_tree(rollout::Tree& tree, const rl::CreditOptions& credit);

} // namespace treerpo::train
