#include "results_file.h"

#include <cstdint>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "treerpo/reward/checker.h"
#include "treerpo/util/error.h"
#include "treerpo/util/json_integer.h"

namespace treerpo::eval {

namespace {

using json = nlohmann::ordered_json;

json sample_json(const Sample& s) {
  return {{"text", s.text},
          {"tokens", s.tokens},
          {"finish", s.stopped ? "stop" : "length"},
          {"extracted", s.extracted ? json(*s.extracted) : json(nullptr)},
          {"correct", s.correct}};
}

std::string gold_answer(const std::string& gold) {
  if (gold.find("####") == std::string::npos) return gold;
  return reward::gsm8k_gold(gold).value_or("");
}

const char* kFreshOut = "write to a new --out file, or delete this one to start over";

// An integer field of a result line. A number that is not an integer of int64 range is refused
// before conversion: nlohmann's get<int64_t> of 5.6e111 is undefined behaviour (found by fuzzing
// the results file, tests/fuzz/results.cpp).
int64_t integer_at(const json& j, const char* key, const std::string& where) {
  const json& v = j.at(key);
  if (!is_int64(v))
    throw bad_input(std::string("\"") + key + "\" is not an integer", where, kFreshOut);
  return v.get<int64_t>();
}

// What a line written by result_line() adds to the summary; throws on a line of another run.
Tally read_line(const json& j, const Problem& problem, const EvalOptions& options,
                const std::string& where) {
  if (j.at("question").get<std::string>() != problem.question) {
    throw bad_input("--out holds a different question at this index", where,
                    std::string("evaluate the same data file, or ") + kFreshOut);
  }
  const bool has_greedy = j.contains("greedy");
  const int64_t k = j.contains("maj") ? integer_at(j.at("maj"), "k", where) : 0;
  if (has_greedy != options.greedy || k != options.maj) {
    throw bad_input("--out was written with other options (greedy " +
                        std::string(has_greedy ? "on" : "off") + ", maj " + std::to_string(k) + ")",
                    where, std::string("repeat those options, or ") + kFreshOut);
  }
  Tally t;
  t.problems = 1;
  if (has_greedy) {
    t.greedy_correct = j.at("greedy").at("correct").get<bool>() ? 1 : 0;
    t.tokens += integer_at(j.at("greedy"), "tokens", where);
    t.samples += 1;
  }
  if (k > 0) {
    const json& maj = j.at("maj");
    t.maj_correct = maj.at("vote").at("correct").get<bool>() ? 1 : 0;
    for (const json& s : maj.at("samples")) t.tokens += integer_at(s, "tokens", where);
    t.samples += static_cast<int64_t>(maj.at("samples").size());
  }
  return t;
}

} // namespace

void Tally::add(const Tally& o) {
  problems += o.problems;
  greedy_correct += o.greedy_correct;
  maj_correct += o.maj_correct;
  samples += o.samples;
  tokens += o.tokens;
}

Tally tally(const ProblemResult& r) {
  Tally t;
  t.problems = 1;
  if (r.greedy) {
    t.greedy_correct = r.greedy->correct ? 1 : 0;
    t.samples += 1;
    t.tokens += r.greedy->tokens;
  }
  if (!r.samples.empty()) {
    t.maj_correct = r.vote.winner && r.samples[*r.vote.winner].correct ? 1 : 0;
    for (const Sample& s : r.samples) t.tokens += s.tokens;
    t.samples += static_cast<int64_t>(r.samples.size());
  }
  return t;
}

std::string result_line(const ProblemResult& r, const Problem& problem) {
  json j = {{"index", r.index},
            {"line", problem.line},
            {"question", problem.question},
            {"gold", problem.answer},
            {"gold_answer", gold_answer(problem.answer)}};
  if (r.greedy) j["greedy"] = sample_json(*r.greedy);
  if (!r.samples.empty()) {
    json samples = json::array();
    for (const Sample& s : r.samples) samples.push_back(sample_json(s));
    const bool correct = r.vote.winner && r.samples[*r.vote.winner].correct;
    json vote = {
        {"answer", r.vote.winner ? json(*r.samples[*r.vote.winner].extracted) : json(nullptr)},
        {"votes", r.vote.votes},
        {"clusters", r.vote.clusters},
        {"tie", r.vote.tie},
        {"correct", correct}};
    j["maj"] = {{"k", static_cast<int64_t>(r.samples.size())},
                {"samples", std::move(samples)},
                {"vote", std::move(vote)}};
  }
  // Model text is valid UTF-8 (the stream decoder repairs it); replace guards the data file's.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

ResultsFile::ResultsFile(std::string path, const std::vector<Problem>& problems,
                         const EvalOptions& options)
    : path_(std::move(path)) {
  std::string content;
  if (std::filesystem::exists(path_)) {
    std::ifstream in(path_, std::ios::binary);
    if (!in) throw runtime_failure("cannot read " + path_, "--out", "check its permissions");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    content = buffer.str();
  }
  const size_t complete = content.rfind('\n') == std::string::npos ? 0 : content.rfind('\n') + 1;
  if (complete < content.size()) {
    std::filesystem::resize_file(path_, complete);
    content.resize(complete);
  }
  size_t start = 0;
  for (int64_t line_no = 1; start < content.size(); ++line_no) {
    const size_t end = content.find('\n', start);
    const std::string line = content.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path_ + ":" + std::to_string(line_no);
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object()) {
      throw bad_input("not an evaluation result line", where, kFreshOut);
    }
    try {
      const auto index = integer_at(j, "index", where);
      if (index < 0) throw bad_input("negative problem index", where, kFreshOut);
      if (index >= static_cast<int64_t>(problems.size())) continue;
      if (done_.count(index) > 0) {
        throw bad_input("problem " + std::to_string(index) + " appears twice", where, kFreshOut);
      }
      done_[index] = read_line(j, problems[static_cast<size_t>(index)], options, where);
    } catch (const json::exception& e) {
      throw bad_input(std::string("malformed evaluation result: ") + e.what(), where, kFreshOut);
    }
  }
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw bad_input("cannot write " + path_, "--out", "check the folder exists");
}

void ResultsFile::append(const std::vector<std::string>& lines) {
  for (const std::string& line : lines) out_ << line << '\n';
  out_.flush();
  if (!out_) throw runtime_failure("writing " + path_ + " failed", "--out", "check the free space");
}

} // namespace treerpo::eval
