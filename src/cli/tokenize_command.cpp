// `tokenize`: JSONL text <-> ids through a model's tokenizer, and `bench tokenizer`: encode
// throughput.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/util/error.h"

namespace treerpo::cli {
namespace {

using nlohmann::json;
using tokenizer::Tokenizer;

json parse_line(const std::string& line, const std::string& where, const char* expected) {
  try {
    return json::parse(line);
  } catch (const json::exception& e) { // parse_error, or out_of_range for a number like 1e999
    throw bad_input(std::string("not valid JSON: ") + e.what(), where,
                    std::string("write one ") + expected + " object per line");
  }
}

void encode_lines(const Tokenizer& tok) {
  std::string line;
  for (size_t n = 1; std::getline(std::cin, line); ++n) {
    const std::string where = "stdin:" + std::to_string(n);
    const json row = parse_line(line, where, "{\"text\": ...}");
    if (!row.is_object() || !row.contains("text") || !row["text"].is_string()) {
      throw bad_input("expected an object with a string field \"text\"", where,
                      "write one {\"text\": ...} object per line");
    }
    const std::string out = json{{"ids", tok.encode(row["text"].get<std::string>())}}.dump();
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fputc('\n', stdout);
  }
}

void decode_lines(const Tokenizer& tok) {
  std::string line;
  for (size_t n = 1; std::getline(std::cin, line); ++n) {
    const std::string where = "stdin:" + std::to_string(n);
    const json row = parse_line(line, where, "{\"ids\": [...]}");
    const json* ids = row.is_object() && row.contains("ids") ? &row["ids"] : nullptr;
    const bool ok =
        ids && ids->is_array() &&
        std::all_of(ids->begin(), ids->end(), [](const json& x) { return x.is_number_integer(); });
    if (!ok) {
      throw bad_input("expected an object with an integer array \"ids\"", where,
                      "write one {\"ids\": [...]} object per line");
    }
    const std::string out = json{{"text", tok.decode(ids->get<std::vector<int32_t>>())}}.dump();
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fputc('\n', stdout);
  }
}

std::vector<std::string> read_texts(const std::string& path, const std::string& field) {
  std::ifstream in(path);
  if (!in) throw bad_input("cannot read file", path, "check the --data path");
  std::vector<std::string> texts;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(n);
    const json row = parse_line(line, where, "JSON");
    if (!row.is_object() || !row.contains(field) || !row[field].is_string()) {
      throw bad_input("no string field \"" + field + "\"", where, "choose the field with --field");
    }
    texts.push_back(row[field].get<std::string>());
  }
  if (texts.empty()) throw bad_input("no texts", path, "pass a non-empty JSONL file");
  return texts;
}

// Seconds to encode every text `passes` times with `threads` threads, each taking an interleaved
// share.
double time_encode(const Tokenizer& tok, const std::vector<std::string>& texts, int threads,
                   int passes, size_t* tokens) {
  std::vector<size_t> counts(threads, 0);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int p = 0; p < passes; ++p) {
        for (size_t i = t; i < texts.size(); i += threads) counts[t] += tok.encode(texts[i]).size();
      }
    });
  }
  for (auto& w : workers) w.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  *tokens = 0;
  for (size_t c : counts) *tokens += c;
  *tokens /= passes;
  return seconds;
}

void bench_tokenizer(const std::string& path, const std::string& data, const std::string& field,
                     int threads, int passes) {
  const auto tok = Tokenizer::load(path);
  const std::vector<std::string> texts = read_texts(data, field);
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  size_t tokens = 0;
  // A warm-up pass per thread count fills the word caches, as it does for the HF library's run.
  time_encode(*tok, texts, 1, 1, &tokens);
  const double one = time_encode(*tok, texts, 1, passes, &tokens);
  time_encode(*tok, texts, threads, 1, &tokens);
  const double all = time_encode(*tok, texts, threads, passes, &tokens);
  const double megabytes = static_cast<double>(bytes) * passes / 1e6;
  const json out = {{"benchmark", "tokenizer"},
                    {"implementation", "treerpo"},
                    {"tokenizer", path},
                    {"data", data},
                    {"field", field},
                    {"texts", texts.size()},
                    {"bytes", bytes},
                    {"tokens", tokens},
                    {"passes", passes},
                    {"threads", threads},
                    {"mb_per_s_1_thread", megabytes / one},
                    {"mb_per_s_all_threads", megabytes / all}};
  std::printf("%s\n", out.dump().c_str());
}

} // namespace

void add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "tokenize", "JSONL on stdin: {\"text\"} lines to {\"ids\"} lines (or back with --decode)");
  static std::string path;
  static bool decode = false;
  cmd->add_option("--tokenizer", path, "Model folder, tokenizer.json or sentencepiece .model")
      ->required();
  cmd->add_flag("--decode", decode, "Read {\"ids\": [...]} lines and write {\"text\": ...} lines");
  cmd->callback([] {
    const auto tok = tokenizer::Tokenizer::load(path);
    std::ios::sync_with_stdio(false);
    decode ? decode_lines(*tok) : encode_lines(*tok);
    std::fflush(stdout);
  });

  auto* bench = bench_subcommand(app)->add_subcommand(
      "tokenizer", "Encode throughput (MB/s) on one thread and on all threads");
  static std::string bench_path, data, field = "question";
  static int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  static int passes = 3;
  bench->add_option("--tokenizer", bench_path, "Model folder, tokenizer.json or .model")
      ->required();
  bench->add_option("--data", data, "JSONL file of texts")->required();
  bench->add_option("--field", field, "Field holding the text")->capture_default_str();
  bench->add_option("--threads", threads, "Threads for the all-threads figure")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench->add_option("--passes", passes, "Timed passes over the data")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench->callback([] { bench_tokenizer(bench_path, data, field, threads, passes); });
}

} // namespace treerpo::cli
