// `treerpo-train check`: the math-answer checker over a JSONL file of {"response", "gold"} lines,
// one
// {"extracted", "correct"} line out per line in. `treerpo-train bench checker` measures its speed
// on real solutions from shared/data.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"
#include "treerpo/reward/checker.h"
#include "treerpo/util/error.h"

namespace treerpo::cli {
namespace {

// A JSON field that should hold answer text; numbers (GSM8K-style 18, amc23-style 27.0) are
// accepted.
std::string text_field(const nlohmann::json& line, const char* name, const std::string& where) {
  auto it = line.find(name);
  if (it == line.end()) {
    throw bad_input(std::string("missing field \"") + name + "\"", where,
                    R"(each line must be {"response": text, "gold": text})");
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  throw bad_input(std::string("field \"") + name + "\" must be a string", where);
}

void run_check(const std::string& input, bool answer_is_fallback) {
  std::ifstream file;
  if (input != "-") {
    file.open(input);
    if (!file) throw bad_input("cannot open the input file", input, "check the path");
  }
  std::istream& in = input == "-" ? std::cin : file;
  const std::string name = input == "-" ? "stdin" : input;
  reward::ExtractOptions options{answer_is_fallback};
  std::string text;
  for (std::size_t number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = name + ":" + std::to_string(number);
    nlohmann::json line;
    try {
      line = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) { // parse_error, or out_of_range (1e999)
      throw bad_input(std::string("not valid JSON (") + e.what() + ")", where,
                      R"(each line must be {"response": text, "gold": text})");
    }
    if (!line.is_object()) {
      throw bad_input("not a JSON object", where,
                      R"(each line must be {"response": text, "gold": text})");
    }
    reward::Verdict verdict = reward::check(text_field(line, "response", where),
                                            text_field(line, "gold", where), options);
    nlohmann::json out = {{"extracted", nullptr}, {"correct", verdict.correct}};
    if (verdict.extracted) out["extracted"] = *verdict.extracted;
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  std::cout.flush();
}

struct BenchItem {
  std::string response, gold;
};

// Real responses: GSM8K test solutions with the "####" line boxed, minerva solutions as written,
// each also against a wrong gold (the right answer perturbed) so both verdicts are timed.
std::vector<BenchItem> bench_items(const std::filesystem::path& data) {
  std::vector<BenchItem> items;
  auto read = [&](const std::filesystem::path& path, auto&& add) {
    std::ifstream in(path);
    if (!in)
      throw bad_input("cannot open benchmark data", path.string(), "pass --data DIR (shared/data)");
    for (std::string text; std::getline(in, text);) {
      if (!text.empty()) add(nlohmann::json::parse(text));
    }
  };
  read(data / "gsm8k" / "test.jsonl", [&](const nlohmann::json& row) {
    std::string answer = row.at("answer").get<std::string>();
    std::string gold = reward::gsm8k_gold(answer).value_or("0");
    std::string response =
        answer.substr(0, answer.rfind("####")) + "The answer is $\\boxed{" + gold + "}$.";
    items.push_back({response, answer});
    items.push_back({response, gold + "1"});
  });
  read(data / "math-eval" / "minerva_math.jsonl", [&](const nlohmann::json& row) {
    std::string solution = row.at("solution").get<std::string>();
    std::string gold = reward::extract_answer(solution).value_or("0");
    items.push_back({solution, gold});
    items.push_back({solution, "2(" + gold + ")+1"});
  });
  return items;
}

void run_bench(const std::string& data, double min_seconds) {
  std::vector<BenchItem> items = bench_items(data);
  using clock = std::chrono::steady_clock;
  std::size_t checks = 0, correct = 0;
  // Per item, its fastest time over all passes: the slowest of those is the worst-case check cost,
  // free of the scheduler noise a single maximum would pick up.
  std::vector<double> fastest_us(items.size(), 1e18);
  auto start = clock::now();
  double elapsed = 0;
  do {
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto before = clock::now();
      correct += reward::check(items[i].response, items[i].gold).correct;
      double us = std::chrono::duration<double, std::micro>(clock::now() - before).count();
      fastest_us[i] = std::min(fastest_us[i], us);
      ++checks;
    }
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < min_seconds);
  double worst_us = *std::max_element(fastest_us.begin(), fastest_us.end());
  nlohmann::json out = {
      {"benchmark", "checker"},
      {"responses", items.size()},
      {"checks", checks},
      {"seconds", elapsed},
      {"checks_per_second", static_cast<double>(checks) / elapsed},
      {"mean_us_per_check", 1e6 * elapsed / static_cast<double>(checks)},
      {"slowest_item_us", worst_us},
      {"correct_fraction", static_cast<double>(correct) / static_cast<double>(checks)}};
  std::printf("%s\n", out.dump().c_str());
}

} // namespace

void add_check_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "check", "Check answers: JSONL {\"response\",\"gold\"} in, {\"extracted\",\"correct\"} out");
  auto input = std::make_shared<std::string>();
  auto fallback = std::make_shared<bool>(false);
  cmd->add_option("--input", *input, "JSONL file, or - for stdin")->required();
  cmd->add_flag("--answer-is-fallback", *fallback,
                "Without \\boxed{}, take the answer from \"the answer is ...\"");
  cmd->callback([input, fallback] { run_check(*input, *fallback); });

  auto* bench = bench_subcommand(app)->add_subcommand(
      "checker", "Math-answer checks per second on real solutions (GSM8K test, minerva_math)");
  auto data = std::make_shared<std::string>("../shared/data");
  auto seconds = std::make_shared<double>(2.0);
  bench->add_option("--data", *data, "The shared data folder (holds gsm8k/ and math-eval/)");
  bench->add_option("--seconds", *seconds, "Run at least this long");
  bench->callback([data, seconds] { run_bench(*data, *seconds); });
}

} // namespace treerpo::cli
