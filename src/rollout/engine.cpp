#include "treerpo/rollout/engine.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <numeric>
#include <set>
#include <string>

#include <ATen/ATen.h>

#include "sequences.h"
#include "treerpo/rollout/coverage.h"
#include "treerpo/rollout/policy.h"
#include "treerpo/rollout/sampler.h"
#include "treerpo/rollout/trie.h"
#include "treerpo/util/error.h"
#include "treerpo/util/host_transfer.h"

namespace treerpo::rollout {

namespace {

// A node being generated (or waiting to start). Its KV sequence is `slot`, a handle of the model's
// cache that the engine reference-counts.
struct Branch {
  int32_t tree = 0, node = 0;
  int64_t slot = -1;     // -1 until started
  int64_t src_slot = -1; // the sequence it forks from when it starts (holds a reference to it)
  int32_t pending = -1;  // the last sampled token, fed at the next decode
  std::unique_ptr<TextStream> text;
  bool after_delimiter = false;
  int64_t answer_tokens = 0;    // generated tokens from the root through this node
  bool coverage = false;        // a coverage sibling (or below one): never splits, never covered
  std::vector<size_t> text_end; // byte end of each token's text in node.text
  Rng rng;
};

// A node that split under rollout.coverage = seed: its sequence (the blocks it shares with its
// children, no decode row) and sampling distribution stay parked until each of its children has
// split or ended, so a long leaf can get an extra sibling there.
struct SplitPoint {
  int64_t slot = -1;
  TokenDistribution dist;
  std::unique_ptr<TextStream> text;
  bool after_delimiter = false;
  int64_t answer_tokens = 0;
  int32_t unresolved = 0;
  Rng rng;
};

class Engine {
public:
  Engine(BranchModel& model, const TextStreamFactory& text, const RolloutSetup& setup,
         const std::vector<PromptInput>& prompts)
      : model_(model), text_(text), cfg_(setup.config),
        eos_(setup.eos_ids.begin(), setup.eos_ids.end()), seed_(setup.seed),
        first_tree_(setup.first_tree), prompts_(prompts), policy_(make_policy(cfg_)),
        sampler_(SamplingSettings{cfg_.temperature, cfg_.top_p, cfg_.top_k, cfg_.repetition_penalty,
                                  cfg_.entropy_top_k, cfg_.entropy_source == "processed"}),
        max_live_(model.max_live_branches()), transfers_at_start_(host_transfers()),
        seqs_(model, cfg_.repetition_penalty != 1.0, max_live_) {
    treerpo_ = cfg_.algorithm == "treerpo";
    const Decision root = policy_->at_root();
    reserve_ = root.children + 1;
  }

  std::vector<Tree> run(const std::function<void(const RolloutStats&)>& on_step,
                        RolloutStats* final_stats) {
    const auto start = std::chrono::steady_clock::now();
    while (next_prompt_ < prompts_.size() || !live_.empty() || !waiting_.empty() ||
           !reprefill_.empty() || !restart_.empty()) {
      step();
      stats_.step += 1;
      stats_.host_transfers = host_transfers() - transfers_at_start_;
      note_kv_held();
      stats_.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      stats_.live_branches = static_cast<int64_t>(live_.size());
      if (on_step) on_step(stats_);
    }
    if (cfg_.algorithm == "tempo") {
      for (Tree& t : trees_) merge_prefix_trie(t, text_);
    }
    if (final_stats) *final_stats = stats_;
    return std::move(trees_);
  }

private:
  // What one step runs: the branches started by a prefill, and which live branches decode.
  struct Plan {
    std::vector<Branch> starts; // roots and reference-coverage cuts
    std::vector<bool> decode;   // per live_ branch
    bool empty() const {
      return starts.empty() && std::find(decode.begin(), decode.end(), true) == decode.end();
    }
  };

  // One step: the plan that fits the cache, one forward of its rows (prefills, then decodes), one
  // draw per row, then each row's branch splits, ends or goes on.
  void step() {
    start_waiting();
    Plan plan = plan_that_fits();
    std::vector<int64_t> row_seqs;
    const at::Tensor logits = forward(plan, row_seqs);
    const Draws d = draw(plan, logits, row_seqs);
    apply(plan, d);
    start_waiting();
  }

  // Nothing fits: the newest tree in flight starts over later, until an older tree can go on.
  Plan plan_that_fits() {
    Plan plan = make_plan();
    while (plan.empty()) {
      const std::set<int32_t> flying = trees_in_flight();
      if (flying.size() < 2) {
        throw runtime_failure("the KV cache cannot hold one tree's live branches: " +
                                  std::to_string(model_.free_blocks()) + " blocks are free",
                              "rollout.kv_cache_tokens", "raise rollout.kv_cache_tokens");
      }
      restart_tree(*flying.rbegin());
      plan = make_plan();
    }
    return plan;
  }

  // Prefills the plan's starts (each gets its sequence) and decodes its live branches' pending
  // tokens: the logits of every row, the sequence of each in `row_seqs`.
  at::Tensor forward(Plan& plan, std::vector<int64_t>& row_seqs) {
    std::vector<at::Tensor> parts;
    if (!plan.starts.empty()) {
      std::vector<int64_t> seqs;
      std::vector<std::vector<int32_t>> ids;
      for (Branch& b : plan.starts) {
        b.slot = seqs_.take();
        const Tree& t = trees_[b.tree];
        std::vector<int32_t> context = t.context_ids(b.node);
        const auto& span = t.nodes[b.node].token_ids;
        context.insert(context.end(), span.begin(), span.end());
        seqs_.mark_seen(b.slot, context);
        stats_.tokens_forwarded += static_cast<int64_t>(context.size());
        seqs.push_back(b.slot);
        ids.push_back(std::move(context));
      }
      parts.push_back(model_.prefill(seqs, ids));
      row_seqs.insert(row_seqs.end(), seqs.begin(), seqs.end());
    }
    std::vector<int64_t> seqs;
    std::vector<int32_t> tokens;
    for (size_t i = 0; i < live_.size(); ++i) {
      if (!plan.decode[i]) continue;
      seqs.push_back(live_[i].slot);
      tokens.push_back(live_[i].pending);
    }
    if (!seqs.empty()) {
      parts.push_back(model_.decode(seqs, tokens));
      stats_.tokens_forwarded += static_cast<int64_t>(tokens.size());
      row_seqs.insert(row_seqs.end(), seqs.begin(), seqs.end());
    }
    return parts.size() == 1 ? parts[0] : at::cat(parts, 0);
  }

  // Each row's token, alternative and entropy from the branch's own uniforms (one host transfer).
  Draws draw(Plan& plan, const at::Tensor& logits, const std::vector<int64_t>& row_seqs) {
    std::vector<double> u_token, u_alt;
    for (Branch& b : plan.starts) {
      u_token.push_back(b.rng.uniform());
      u_alt.push_back(b.rng.uniform());
    }
    for (size_t i = 0; i < live_.size(); ++i) {
      if (!plan.decode[i]) continue;
      u_token.push_back(live_[i].rng.uniform());
      u_alt.push_back(live_[i].rng.uniform());
    }
    return sampler_.draw(logits, seqs_.seen_rows(row_seqs), u_token, u_alt);
  }

  // Rows in forward's order: a started branch splits at once (a root into the policy's children,
  // a reference cut into two); a decoded branch splits, ends as a leaf or keeps its token.
  void apply(Plan& plan, const Draws& d) {
    int64_t row = 0;
    for (Branch& b : plan.starts) {
      Decision decision =
          b.node == 0 ? policy_->at_root() : Decision{2, NodeOrigin::Coverage, false};
      split(b, d, row++, decision);
    }
    std::vector<Branch> previous = std::move(live_);
    live_.clear();
    std::vector<int64_t> seen_seqs, seen_tokens;
    for (size_t i = 0; i < previous.size(); ++i) {
      Branch& b = previous[i];
      if (!plan.decode[i]) { // waits for KV blocks with its pending token
        stats_.branch_waits += 1;
        live_.push_back(std::move(b));
        continue;
      }
      const Node& node = trees_[b.tree].nodes[b.node];
      BranchView view{node.depth,        static_cast<int64_t>(node.token_ids.size()),
                      b.after_delimiter, d.entropy[row],
                      b.coverage,        paths_[b.tree]};
      const Decision decision = policy_->decide(view);
      if (decision.children > 0) {
        split(b, d, row++, decision);
        continue;
      }
      const int32_t t = d.token[row];
      const float lp = d.token_logprob[row++];
      if (append(b, t, lp)) {
        finish_leaf(b);
      } else {
        b.pending = t;
        seen_seqs.push_back(b.slot);
        seen_tokens.push_back(t);
        live_.push_back(std::move(b));
      }
    }
    seqs_.mark_seen(seen_seqs, seen_tokens);
  }

  // The next tree to grow: a preempted one first, else the next prompt's.
  Branch new_tree() {
    size_t index = next_prompt_;
    if (!restart_.empty()) {
      index = static_cast<size_t>(*restart_.begin());
      restart_.erase(restart_.begin());
    } else {
      next_prompt_ += 1;
      trees_.emplace_back();
      paths_.push_back(1);
      generated_.push_back(0);
    }
    const PromptInput& p = prompts_[index];
    Tree t;
    t.prompt = p.prompt;
    t.gold = p.gold;
    t.prompt_ids = p.prompt_ids;
    t.nodes.emplace_back();
    trees_[index] = std::move(t);
    paths_[index] = 1;
    generated_[index] = 0;
    stats_.trees += 1;
    stats_.nodes += 1;
    stats_.unique_tree_tokens += static_cast<int64_t>(p.prompt_ids.size());
    Branch root;
    root.tree = static_cast<int32_t>(index);
    root.node = 0;
    root.text = text_();
    root.rng = Rng(node_seed(root.tree, 0));
    return root;
  }

  uint64_t node_seed(int32_t tree, int32_t node) const {
    return Rng::derive(Rng::derive(seed_, static_cast<uint64_t>(first_tree_ + tree)),
                       static_cast<uint64_t>(node));
  }

  // Appends a sampled token to the branch's node; true when the node ends there as a leaf.
  bool append(Branch& b, int32_t token, float logprob) {
    Node& node = trees_[b.tree].nodes[b.node];
    node.token_ids.push_back(token);
    node.logprobs.push_back(logprob);
    const std::string piece = b.text->push(token);
    node.text += piece;
    b.text_end.push_back(node.text.size());
    b.after_delimiter = !piece.empty() && ends_with_delimiter(piece, cfg_.delimiters);
    b.answer_tokens += 1;
    stats_.tokens_generated += 1;
    generated_[b.tree] += 1;
    stats_.unique_tree_tokens += 1;
    return eos_.count(token) > 0 ||
           static_cast<int64_t>(node.token_ids.size()) >= cfg_.max_node_tokens ||
           b.answer_tokens >= cfg_.max_answer_tokens;
  }

  // The branch's node ends before the drawn token and gets decision.children children.
  void split(Branch& b, const Draws& d, int64_t row, const Decision& decision) {
    Tree& tree = trees_[b.tree];
    tree.nodes[b.node].split_entropy = d.entropy[row];
    std::vector<std::pair<int32_t, float>> firsts = {{d.token[row], d.token_logprob[row]}};
    if (decision.distinct) firsts.emplace_back(d.alt_token[row], d.alt_logprob[row]);
    const bool park = treerpo_ && cfg_.coverage == "seed" && !b.coverage;
    TokenDistribution dist;
    if (park || static_cast<int32_t>(firsts.size()) < decision.children)
      dist = sampler_.distribution(row);
    while (static_cast<int32_t>(firsts.size()) < decision.children) {
      const int32_t t = dist.draw(b.rng);
      firsts.emplace_back(t, dist.logprob_of(t));
    }
    if (park) {
      SplitPoint sp;
      sp.slot = b.slot;
      sp.dist = dist;
      sp.text = b.text->clone();
      sp.after_delimiter = b.after_delimiter;
      sp.answer_tokens = b.answer_tokens;
      sp.unresolved = decision.children;
      sp.rng = Rng(Rng::derive(node_seed(b.tree, b.node), 1));
      seqs_.ref(b.slot);
      split_points_[{b.tree, b.node}] = std::move(sp);
    }
    resolve_parent(b);
    paths_[b.tree] += decision.children - 1;
    for (const auto& [token, logprob] : firsts) {
      start_child(b, tree.add_child(b.node, decision.origin), token, logprob, b.slot,
                  b.coverage || decision.origin == NodeOrigin::Coverage);
    }
    seqs_.unref(b.slot);
  }

  // A new child of `parent`'s node, starting with `token`; it forks `src` when it gets a slot.
  void start_child(const Branch& parent, int32_t node, int32_t token, float logprob, int64_t src,
                   bool coverage) {
    stats_.nodes += 1;
    stats_.max_depth = std::max(stats_.max_depth, trees_[parent.tree].nodes[node].depth);
    Branch c;
    c.tree = parent.tree;
    c.node = node;
    c.text = parent.text->clone();
    c.after_delimiter = parent.after_delimiter;
    c.answer_tokens = parent.answer_tokens;
    c.coverage = coverage;
    c.rng = Rng(node_seed(c.tree, node));
    if (append(c, token, logprob)) {
      finish_leaf(c);
      return;
    }
    c.pending = token;
    c.src_slot = src;
    seqs_.ref(src);
    waiting_.push_back(std::move(c));
  }

  // Children waiting to start, while the step has rows for them: the last holder of the parent's
  // sequence takes it over, the others fork it (sharing its blocks).
  void start_waiting() {
    std::deque<Branch> still;
    while (!waiting_.empty()) {
      Branch c = std::move(waiting_.front());
      waiting_.pop_front();
      if (static_cast<int64_t>(live_.size()) >= max_live_) {
        still.push_back(std::move(c));
        continue;
      }
      c.slot = seqs_.sole_holder(c.src_slot) ? c.src_slot : seqs_.fork(c.src_slot);
      c.src_slot = -1;
      seqs_.mark_seen(c.slot, {c.pending});
      live_.push_back(std::move(c));
    }
    waiting_ = std::move(still);
  }

  // Decodes first, tree by tree from the oldest (they finish and free blocks): a tree's live
  // branches decode together or all wait, so its events keep their order and its node ids (and
  // draws) are those of an unhindered run. Then prefills of reference cuts and new trees while the
  // cache keeps a block per root child in hand, none while a tree waits.
  Plan make_plan() {
    Plan plan;
    plan.decode.assign(live_.size(), false);
    int64_t budget = model_.free_blocks();
    std::map<int32_t, std::vector<size_t>> by_tree;
    for (size_t i = 0; i < live_.size(); ++i) by_tree[live_[i].tree].push_back(i);
    bool waited = false;
    for (const auto& [tree, rows] : by_tree) {
      std::vector<int64_t> seqs;
      for (size_t i : rows) seqs.push_back(live_[i].slot);
      const int64_t need = model_.blocks_to_decode(seqs);
      if (need > budget) {
        waited = true;
        continue;
      }
      for (size_t i : rows) plan.decode[i] = true;
      budget -= need;
    }
    int64_t rows = static_cast<int64_t>(live_.size() + waiting_.size());
    while (!reprefill_.empty() && rows < max_live_) {
      const int64_t need = model_.blocks_for(context_length(reprefill_.front())) + reserve_;
      if (need > budget) break;
      budget -= need - reserve_;
      rows += 1;
      plan.starts.push_back(std::move(reprefill_.front()));
      reprefill_.pop_front();
    }
    const int64_t reserve = std::min(reserve_, max_live_);
    int64_t trees = 0;
    while (!waited && waiting_.empty() && (!restart_.empty() || next_prompt_ < prompts_.size()) &&
           rows + reserve * (trees + 1) <= max_live_) {
      const size_t next = restart_.empty() ? next_prompt_ : static_cast<size_t>(*restart_.begin());
      const auto prompt = static_cast<int64_t>(prompts_[next].prompt_ids.size());
      const int64_t need = model_.blocks_for(prompt) + reserve_;
      if (need > budget) break;
      budget -= need - reserve_;
      trees += 1;
      plan.starts.push_back(new_tree());
    }
    return plan;
  }

  std::set<int32_t> trees_in_flight() const {
    std::set<int32_t> t;
    for (const Branch& b : live_) t.insert(b.tree);
    for (const Branch& b : waiting_) t.insert(b.tree);
    for (const Branch& b : reprefill_) t.insert(b.tree);
    for (const auto& [key, sp] : split_points_) t.insert(key.first);
    return t;
  }

  // Preemption by recomputation: every sequence of the tree is released and the tree grows again
  // from its prompt when room returns. Its draws derive from (seed, tree, node), so it grows the
  // same tree.
  void restart_tree(int32_t tree) {
    auto drop = [&](auto& branches, auto release) {
      for (auto it = branches.begin(); it != branches.end();) {
        if (it->tree != tree) {
          ++it;
          continue;
        }
        release(*it);
        it = branches.erase(it);
      }
    };
    drop(live_, [&](Branch& b) { seqs_.unref(b.slot); });
    drop(waiting_, [&](Branch& b) { seqs_.unref(b.src_slot); });
    drop(reprefill_, [](Branch&) {});
    for (auto it = split_points_.begin(); it != split_points_.end();) {
      if (it->first.first != tree) {
        ++it;
        continue;
      }
      seqs_.unref(it->second.slot);
      it = split_points_.erase(it);
    }
    const Tree& t = trees_[tree];
    stats_.trees -= 1;
    stats_.nodes -= static_cast<int64_t>(t.nodes.size());
    stats_.leaves -= static_cast<int64_t>(t.leaf_ids().size());
    stats_.unique_tree_tokens -= t.unique_tokens();
    stats_.tokens_generated -= generated_[tree];
    stats_.preemptions += 1;
    restart_.insert(tree);
  }

  int64_t context_length(const Branch& b) const {
    const Tree& t = trees_[b.tree];
    return static_cast<int64_t>(t.context_ids(b.node).size() + t.nodes[b.node].token_ids.size());
  }

  void finish_leaf(Branch& b) {
    Tree& tree = trees_[b.tree];
    Node& node = tree.nodes[b.node];
    node.leaf = true;
    stats_.leaves += 1;
    paths_[b.tree] -= 1;
    if (b.slot >= 0) seqs_.unref(b.slot);
    b.slot = -1;
    // Seed: a leaf of X > L_min tokens (coverage_min_tokens); reference: of more than S_min
    // characters.
    const bool seed_long = static_cast<int64_t>(node.token_ids.size()) >= cfg_.coverage_min_tokens;
    const bool reference_long = utf8_chars(node.text) > cfg_.coverage_min_chars;
    if (treerpo_ && !b.coverage && cfg_.coverage == "seed" && seed_long) add_seed_sibling(b);
    if (treerpo_ && !b.coverage && cfg_.coverage == "reference" && reference_long)
      cut_for_reference(b);
    resolve_parent(b);
  }

  // Seed rule: one extra sibling sampled from the parent's split point, no forced distinct token.
  void add_seed_sibling(const Branch& leaf) {
    const int32_t parent = trees_[leaf.tree].nodes[leaf.node].parent;
    SplitPoint& sp = split_points_.at({leaf.tree, parent});
    Branch at_parent;
    at_parent.tree = leaf.tree;
    at_parent.text = sp.text->clone();
    at_parent.after_delimiter = sp.after_delimiter;
    at_parent.answer_tokens = sp.answer_tokens;
    const int32_t token = sp.dist.draw(sp.rng);
    paths_[leaf.tree] += 1;
    start_child(at_parent, trees_[leaf.tree].add_child(parent, NodeOrigin::Coverage), token,
                sp.dist.logprob_of(token), sp.slot, true);
  }

  // Reference rule: truncate the leaf at its last delimiter before the final S_min characters and
  // hang two regenerated children there (the cut context is prefilled again, as the reference
  // does).
  void cut_for_reference(Branch& b) {
    Node& node = trees_[b.tree].nodes[b.node];
    const auto cut = reference_cut(node.text, b.text_end, cfg_.delimiters, cfg_.coverage_min_chars,
                                   cfg_.min_segment_tokens);
    if (!cut) return;
    const auto removed = static_cast<int64_t>(node.token_ids.size() - *cut);
    node.token_ids.resize(*cut);
    node.logprobs.resize(*cut);
    node.text.resize(b.text_end[*cut - 1]);
    node.leaf = false;
    stats_.leaves -= 1;
    stats_.unique_tree_tokens -= removed;
    paths_[b.tree] += 1;
    Branch again;
    again.tree = b.tree;
    again.node = b.node;
    again.text = text_();
    for (int32_t id : trees_[b.tree].answer_ids(b.node)) again.text->push(id);
    again.after_delimiter = true;
    again.answer_tokens = b.answer_tokens - removed;
    again.coverage = true;
    again.rng = Rng(Rng::derive(node_seed(b.tree, b.node), 2));
    reprefill_.push_back(std::move(again));
  }

  // The branch's node has split or ended: one less open child at its parent's split point.
  void resolve_parent(const Branch& b) {
    if (b.coverage) return;
    const int32_t parent = trees_[b.tree].nodes[b.node].parent;
    auto it = split_points_.find({b.tree, parent});
    if (it == split_points_.end()) return;
    if (--it->second.unresolved == 0) {
      seqs_.unref(it->second.slot);
      split_points_.erase(it);
    }
  }

  // After each step: the peak of KV positions held, and the distinct tree tokens the held
  // sequences cover then.
  void note_kv_held() {
    const int64_t held = model_.kv_tokens_held();
    if (held <= stats_.kv_tokens_held_peak) return;
    stats_.kv_tokens_held_peak = held;
    stats_.kv_unique_tokens_at_peak = resident_unique_tokens();
  }

  // Each held sequence covers its tree's prompt, its node's ancestors whole and `cached` tokens of
  // its node; the union over sequences, per tree.
  int64_t resident_unique_tokens() const {
    std::map<int32_t, std::map<int32_t, int64_t>> covered; // tree -> node -> tokens cached
    auto cover = [&](int32_t tree, int32_t node, int64_t cached) {
      auto& nodes = covered[tree];
      nodes[node] = std::max(nodes[node], cached);
      for (int32_t a = trees_[tree].nodes[node].parent; a > 0; a = trees_[tree].nodes[a].parent) {
        nodes[a] = static_cast<int64_t>(trees_[tree].nodes[a].token_ids.size());
      }
    };
    for (const Branch& b : live_) {
      // The pending token is in the node, not yet in the cache.
      cover(b.tree, b.node,
            static_cast<int64_t>(trees_[b.tree].nodes[b.node].token_ids.size()) - 1);
    }
    for (const Branch& c : waiting_) {
      const int32_t parent = trees_[c.tree].nodes[c.node].parent;
      cover(c.tree, parent, static_cast<int64_t>(trees_[c.tree].nodes[parent].token_ids.size()));
    }
    for (const auto& [key, sp] : split_points_) {
      cover(key.first, key.second,
            static_cast<int64_t>(trees_[key.first].nodes[key.second].token_ids.size()));
    }
    int64_t total = 0;
    for (const auto& [tree, nodes] : covered) {
      total += static_cast<int64_t>(trees_[tree].prompt_ids.size());
      for (const auto& [node, cached] : nodes) total += node > 0 ? cached : 0;
    }
    return total;
  }

  BranchModel& model_;
  const TextStreamFactory& text_;
  RolloutConfig cfg_;
  std::set<int32_t> eos_;
  uint64_t seed_;
  int64_t first_tree_;
  const std::vector<PromptInput>& prompts_;
  std::unique_ptr<Policy> policy_;
  Sampler sampler_;
  bool treerpo_ = false;
  int64_t reserve_ = 1;
  int64_t max_live_;
  int64_t transfers_at_start_;
  Sequences seqs_;
  std::vector<Tree> trees_;
  std::vector<int64_t> paths_; // live paths per tree
  size_t next_prompt_ = 0;
  std::vector<Branch> live_;
  std::deque<Branch> waiting_, reprefill_;
  std::set<int32_t> restart_;      // trees preempted, to grow again from their prompts
  std::vector<int64_t> generated_; // tokens sampled into each tree
  std::map<std::pair<int32_t, int32_t>, SplitPoint> split_points_;
  RolloutStats stats_;
};

} // namespace

std::vector<Tree> grow_trees(BranchModel& model, const TextStreamFactory& text,
                             const RolloutSetup& setup, const std::vector<PromptInput>& prompts,
                             const std::function<void(const RolloutStats&)>& on_step,
                             RolloutStats* final_stats) {
  Engine engine(model, text, setup, prompts);
  return engine.run(on_step, final_stats);
}

} // namespace treerpo::rollout
