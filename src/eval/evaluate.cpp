#include "treerpo/eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "results_file.h"
#include "treerpo/dist/world.h"
#include "treerpo/eval/interval.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/reward/checker.h"
#include "treerpo/rollout/qwen2_branches.h"
#include "treerpo/rollout/sampler.h"
#include "treerpo/util/error.h"
#include "treerpo/util/log.h"

namespace treerpo::eval {

namespace {

using rollout::Rng;

void validate(const EvalOptions& o) {
  const char* where = "eval options";
  if (!o.greedy && o.maj <= 0) {
    throw bad_input("nothing to evaluate: greedy is off and maj is 0", where,
                    "pass --greedy and/or --maj K");
  }
  if (o.maj < 0) throw bad_input("maj must be >= 0", where, "pass --maj K with K >= 1");
  if (o.limit < 0) throw bad_input("limit must be >= 0", where, "0 evaluates every problem");
  if (o.max_new_tokens < 1) throw bad_input("max_new_tokens must be >= 1", where, "");
  if (o.batch < 1) throw bad_input("batch must be >= 1", where, "");
  if (o.maj > 0 && !(o.temperature > 0.0)) {
    throw bad_input("maj@k needs a temperature > 0", where, "the protocol uses 0.7");
  }
  if (o.maj > 0 && !(o.top_p > 0.0 && o.top_p <= 1.0)) {
    throw bad_input("top_p must be in (0, 1]", where, "the protocol uses 0.8");
  }
}

// The rollout engine's `grpo` shape grows k independent samples as the root's children; with
// temperature 0 and one sample it is plain greedy decoding.
rollout::RolloutSetup sampling_setup(const EvalOptions& o, bool greedy, std::vector<int32_t> eos,
                                     uint64_t seed) {
  rollout::RolloutSetup setup;
  RolloutConfig& c = setup.config;
  c.algorithm = "grpo";
  c.samples = greedy ? 1 : o.maj;
  c.temperature = greedy ? 0.0 : o.temperature;
  c.top_p = greedy ? 1.0 : o.top_p;
  c.top_k = 0;
  c.repetition_penalty = 1.0;
  c.max_node_tokens = o.max_new_tokens;
  c.max_answer_tokens = o.max_new_tokens;
  setup.eos_ids = std::move(eos);
  setup.seed = seed;
  return setup;
}

// The first `slots` KV slots of a larger cache. Each pass over a batch sees exactly its own samples
// plus the one slot the engine keeps free to start a prompt, so how a batch is decoded depends on
// that batch alone (not on --maj, --limit or the batches before it).
class SlotWindow : public rollout::BranchModel {
public:
  SlotWindow(rollout::BranchModel& inner, int64_t slots) : inner_(inner), slots_(slots) {}
  int64_t max_live_branches() const override { return slots_; }
  int64_t vocab_size() const override { return inner_.vocab_size(); }
  at::Device device() const override { return inner_.device(); }
  at::Tensor prefill(const std::vector<int64_t>& seqs,
                     const std::vector<std::vector<int32_t>>& prompts) override {
    return inner_.prefill(seqs, prompts);
  }
  at::Tensor decode(const std::vector<int64_t>& seqs, const std::vector<int32_t>& tokens) override {
    return inner_.decode(seqs, tokens);
  }
  void fork(int64_t src, int64_t dst) override { inner_.fork(src, dst); }
  void release(int64_t seq) override { inner_.release(seq); }
  int64_t free_blocks() const override { return inner_.free_blocks(); }
  int64_t blocks_for(int64_t n) const override { return inner_.blocks_for(n); }
  int64_t blocks_to_decode(const std::vector<int64_t>& seqs) const override {
    return inner_.blocks_to_decode(seqs);
  }
  int64_t kv_tokens_held() const override { return inner_.kv_tokens_held(); }

private:
  rollout::BranchModel& inner_;
  int64_t slots_;
};

// The root's children in order: one sample each.
std::vector<Sample> samples_of(const rollout::Tree& tree, const tokenizer::Tokenizer& tok,
                               const std::set<int32_t>& eos) {
  std::vector<Sample> out;
  for (int32_t child : tree.root().children) {
    const std::vector<int32_t> ids = tree.answer_ids(child);
    Sample s;
    s.text = tok.decode(ids);
    s.tokens = static_cast<int64_t>(ids.size());
    s.stopped = !ids.empty() && eos.count(ids.back()) > 0;
    const reward::Verdict v = reward::check(s.text, tree.gold);
    s.extracted = v.extracted;
    s.correct = v.correct;
    out.push_back(std::move(s));
  }
  return out;
}

// What one rank decoded in a round: its batch's result lines and their tally, as JSON.
std::string round_bytes(const std::vector<std::string>& lines, const Tally& t) {
  nlohmann::json j = {
      {"lines", lines},
      {"tally", {t.problems, t.greedy_correct, t.maj_correct, t.samples, t.tokens}}};
  return j.dump();
}

void read_round(const std::string& bytes, std::vector<std::string>& lines, Tally& t) {
  const nlohmann::json j = nlohmann::json::parse(bytes);
  for (const auto& line : j.at("lines")) lines.push_back(line.get<std::string>());
  const auto& v = j.at("tally");
  Tally r{v[0].get<int64_t>(), v[1].get<int64_t>(), v[2].get<int64_t>(), v[3].get<int64_t>(),
          v[4].get<int64_t>()};
  t.add(r);
}

void log_progress(int64_t done, int64_t total, const Tally& t, const EvalOptions& o) {
  const double n = std::max<int64_t>(1, t.problems);
  std::string scores;
  if (o.greedy) scores += fmt::format(" greedy {:.1f}%", 100.0 * t.greedy_correct / n);
  if (o.maj > 0) scores += fmt::format(" maj@{} {:.1f}%", o.maj, 100.0 * t.maj_correct / n);
  spdlog::info("eval: {}/{} problems,{}", done, total, scores);
}

} // namespace

EvalSummary evaluate(model::Qwen2& model, const tokenizer::Tokenizer& tok,
                     const std::vector<Problem>& all_problems, const EvalOptions& options,
                     const std::string& out_path, dist::World* world) {
  validate(options);
  dist::World alone;
  dist::World& job = world ? *world : alone;
  const auto start = std::chrono::steady_clock::now();
  const auto n = static_cast<int64_t>(all_problems.size());
  const int64_t count = options.limit > 0 ? std::min(options.limit, n) : n;
  const std::vector<Problem> problems(all_problems.begin(), all_problems.begin() + count);
  // Rank 0 alone reads and writes --out; the others learn which problems it already holds.
  std::optional<ResultsFile> file;
  if (!out_path.empty() && job.main()) file.emplace(out_path, problems, options);
  Tally total;
  int64_t resumed = 0;
  std::set<int64_t> done;
  if (file) {
    for (const auto& [index, t] : file->done()) total.add(t), resumed += 1, done.insert(index);
  }
  if (!out_path.empty() && job.joined()) {
    const nlohmann::json held = nlohmann::json::parse(
        job.broadcast(nlohmann::json(std::vector<int64_t>(done.begin(), done.end())).dump(),
                      "the problems --out already holds"));
    done = held.get<std::set<int64_t>>();
  }

  std::vector<rollout::PromptInput> prompts;
  size_t longest = 0;
  for (const Problem& p : problems) {
    prompts.push_back({p.question, p.answer,
                       tok.encode(tokenizer::qwen_math_prompt(p.question, options.system_prompt))});
    longest = std::max(longest, prompts.back().prompt_ids.size());
  }
  const std::vector<int32_t> eos_ids = tok.eos_ids();
  const std::set<int32_t> eos(eos_ids.begin(), eos_ids.end());
  const torch::Tensor weight = model.parameters().front();
  const int64_t samples = std::max<int64_t>(1, options.maj);
  std::optional<rollout::Qwen2Branches> branches;
  const auto streams = rollout::tokenizer_streams(tok);

  int64_t generated = 0;
  // Decodes batch `b` (problems [b * batch, ...)): its problems not yet in --out, as result lines
  // and their tally.
  auto decode_batch = [&](int64_t b, std::vector<std::string>& lines, Tally& decoded) {
    const int64_t begin = b * options.batch, end = std::min(count, begin + options.batch);
    bool pending = false;
    for (int64_t i = begin; i < end; ++i) pending |= done.count(i) == 0;
    if (!pending) return;
    if (!branches) {
      const int64_t slots = std::min(options.batch, count) * samples + 1;
      branches.emplace(model, slots,
                       slots * (static_cast<int64_t>(longest) + options.max_new_tokens + 1),
                       RolloutConfig{}.kv_block_tokens, weight.scalar_type(), weight.device());
    }
    const int64_t rows = end - begin;
    const std::vector<rollout::PromptInput> batch(prompts.begin() + begin, prompts.begin() + end);
    const auto batch_index = static_cast<uint64_t>(b);
    rollout::RolloutStats stats;
    std::vector<rollout::Tree> greedy_trees, maj_trees;
    if (options.greedy) {
      SlotWindow window(*branches, rows + 1);
      greedy_trees = rollout::grow_trees(window, streams, sampling_setup(options, true, eos_ids, 0),
                                         batch, {}, &stats);
      generated += stats.tokens_generated;
    }
    if (options.maj > 0) {
      const uint64_t seed = Rng::derive(Rng::derive(options.seed, 0), batch_index);
      SlotWindow window(*branches, rows * options.maj + 1);
      maj_trees = rollout::grow_trees(
          window, streams, sampling_setup(options, false, eos_ids, seed), batch, {}, &stats);
      generated += stats.tokens_generated;
    }
    for (int64_t i = begin; i < end; ++i) {
      if (done.count(i) > 0) continue;
      const auto row = static_cast<size_t>(i - begin);
      ProblemResult r;
      r.index = i;
      if (options.greedy) r.greedy = samples_of(greedy_trees[row], tok, eos).front();
      if (options.maj > 0) {
        r.samples = samples_of(maj_trees[row], tok, eos);
        std::vector<std::optional<std::string>> answers;
        for (const Sample& s : r.samples) answers.push_back(s.extracted);
        r.vote = majority_vote(answers, Rng::derive(Rng::derive(options.seed, 1), i));
      }
      decoded.add(tally(r));
      if (!out_path.empty()) lines.push_back(result_line(r, problems[static_cast<size_t>(i)]));
    }
  };

  // Batches are fixed slices of the problem list (not of the problems still to do), so a resumed
  // run decodes each batch exactly as an uninterrupted run does: same rows, same sampling seeds.
  // In a job of several ranks, round k gives batch k * ranks + r to rank r; rank 0 appends every
  // rank's lines in batch order, and every rank counts every rank's tally.
  const int64_t batches = (count + options.batch - 1) / options.batch;
  for (int64_t round = 0; round * job.size() < batches; ++round) {
    const int64_t mine = round * job.size() + job.rank();
    std::vector<std::string> lines;
    Tally decoded;
    if (mine < batches) decode_batch(mine, lines, decoded);
    if (job.joined()) {
      const std::vector<std::string> all =
          job.gather(round_bytes(lines, decoded), "the evaluation results");
      lines.clear();
      decoded = Tally{};
      for (const std::string& bytes : all) read_round(bytes, lines, decoded);
    }
    total.add(decoded);
    if (file && !lines.empty()) file->append(lines);
    if (job.main() && decoded.problems > 0) {
      log_progress(std::min(count, (round + 1) * job.size() * options.batch), count, total,
                   options);
    }
  }
  generated = job.sum(generated, "the generated-token count");
  EvalSummary s;
  s.problems = total.problems;
  s.resumed = resumed;
  s.greedy = options.greedy;
  s.maj = options.maj;
  s.greedy_correct = total.greedy_correct;
  s.maj_correct = total.maj_correct;
  const double denominator = std::max<double>(1.0, static_cast<double>(total.problems));
  if (options.greedy) {
    const Interval ci = wilson_interval(total.greedy_correct, total.problems);
    s.greedy_accuracy = total.greedy_correct / denominator;
    s.greedy_ci_low = ci.low, s.greedy_ci_high = ci.high;
  }
  if (options.maj > 0) {
    const Interval ci = wilson_interval(total.maj_correct, total.problems);
    s.maj_accuracy = total.maj_correct / denominator;
    s.maj_ci_low = ci.low, s.maj_ci_high = ci.high;
  }
  s.mean_generated_tokens =
      total.samples > 0 ? static_cast<double>(total.tokens) / static_cast<double>(total.samples)
                        : 0.0;
  s.generated_tokens = generated;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  s.tokens_per_s = s.seconds > 0 ? static_cast<double>(generated) / s.seconds : 0.0;
  return s;
}

std::string summary_json(const EvalSummary& s) {
  nlohmann::ordered_json j = {{"problems", s.problems}, {"resumed", s.resumed}};
  if (s.greedy) {
    j["greedy"] = {{"correct", s.greedy_correct},
                   {"accuracy", 100.0 * s.greedy_accuracy},
                   {"ci95", {100.0 * s.greedy_ci_low, 100.0 * s.greedy_ci_high}}};
  }
  if (s.maj > 0) {
    j["maj"] = {{"k", s.maj},
                {"correct", s.maj_correct},
                {"accuracy", 100.0 * s.maj_accuracy},
                {"ci95", {100.0 * s.maj_ci_low, 100.0 * s.maj_ci_high}}};
  }
  j["mean_generated_tokens"] = s.mean_generated_tokens;
  j["generated_tokens"] = s.generated_tokens;
  j["seconds"] = s.seconds;
  j["tokens_per_s"] = s.tokens_per_s;
  return j.dump();
}

} // namespace treerpo::eval
