#include "treerpo/train/scoring.h"

#include "treerpo/reward/checker.h"

namespace treerpo::train {

rl::CreditOptions credit_options(const Config& config) {
  rl::CreditOptions options;
  options.rule = rl::credit_rule_for(config.rollout.algorithm, config.train.loss_agg);
  options.std_normalize = config.train.std_normalize;
  options.per_sequence_mean = config.train.loss_agg == "seq-mean-token-mean";
  return options;
}

std::vector<std::vector<rl::SpanCredit>> score_trees(std::vector<rollout::Tree>& trees,
                                                     const Config& config) {
  rl::CreditOptions options = credit_options(config);
  std::vector<std::vector<rl::SpanCredit>> credit;
  for (rollout::Tree& tree : trees) credit.push_back(score_tree(tree, options));
  if (config.rollout.algorithm != "treepo" || !config.train.whiten_advantages) return credit;
  const rl::Whitening w = rl::whitening(trees);
  options.shift = w.shift;
  options.scale = w.scale;
  for (size_t i = 0; i < trees.size(); ++i) credit[i] = rl::assign_credit(trees[i], options);
  return credit;
}

std::vector<rl::SpanCredit> score_tree(rollout::Tree& tree, const rl::CreditOptions& credit) {
  for (int32_t leaf : tree.leaf_ids()) {
    std::string answer;
    for (int32_t n = leaf; n > 0; n = tree.nodes[static_cast<size_t>(n)].parent) {
      answer.insert(0, tree.nodes[static_cast<size_t>(n)].text);
    }
    bool correct = reward::check(answer, tree.gold).correct;
    tree.nodes[static_cast<size_t>(leaf)].correct = correct;
    tree.nodes[static_cast<size_t>(leaf)].reward = correct ? 1.0 : 0.0;
  }
  return rl::assign_credit(tree, credit);
}

} // namespace treerpo::train
