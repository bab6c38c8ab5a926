#include "treerpo/train/demo.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "treerpo/model/qwen2.h"
#include "treerpo/tokenizer/byte_level_writer.h"
#include "treerpo/tokenizer/chat.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/train/synthetic.h"
#include "treerpo/util/error.h"
#include "treerpo/util/rng.h"

namespace fs = std::filesystem;

namespace treerpo::train {
namespace {

// Words as the Qwen2 split regex cuts them: an optional leading space then letters.
std::map<std::string, int64_t> count_words(const std::vector<std::string>& texts) {
  std::map<std::string, int64_t> counts;
  for (const std::string& text : texts) {
    size_t i = 0;
    while (i < text.size()) {
      size_t start = i;
      if (text[i] == ' ' && i + 1 < text.size() &&
          std::isalpha(static_cast<unsigned char>(text[i + 1])))
        ++i;
      size_t letters = i;
      while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
      if (i > letters && i - start >= 2) counts[text.substr(start, i - start)]++;
      if (i == start) ++i;
    }
  }
  return counts;
}

// Merges that build each word left to right: ("A","n"), ("An","n"), ... Shared prefixes merge once.
std::vector<std::pair<std::string, std::string>>
word_merges(const std::map<std::string, int64_t>& words) {
  std::vector<std::pair<std::string, std::string>> merges;
  std::set<std::string> made;
  for (const auto& [word, count] : words) {
    std::string prefix(1, word[0]);
    for (size_t k = 1; k < word.size(); ++k) {
      std::string next = prefix + word[k];
      if (made.insert(next).second) merges.emplace_back(prefix, std::string(1, word[k]));
      prefix = next;
    }
  }
  return merges;
}

// The SFT split imitates a careless teacher: in `slip_rate` of the solutions one step's result is
// one too high (the last step's, or with SlipStep::Any a step drawn uniformly), and so is the final
// answer. Imitation alone then prefers the slip; the checker's reward is what teaches the model to
// stop making it (the demo's point). Gold answers are never touched.
void write_sft_split(const fs::path& train, const fs::path& out, double slip_rate,
                     DemoOptions::SlipStep slip_step, uint64_t seed) {
  std::ifstream in(train);
  std::ofstream sft(out);
  SplitMix64 rng(seed);
  for (std::string line; std::getline(in, line);) {
    auto row = nlohmann::json::parse(line);
    std::string solution = row.at("solution").get<std::string>();
    const bool slip = static_cast<double>(rng.next() >> 11) * 0x1.0p-53 < slip_rate;
    const auto steps = static_cast<size_t>(std::count(solution.begin(), solution.end(), '\n'));
    if (slip && steps > 0) {
      // The draw for the step comes after the slip's, so the last-step split is the one earlier
      // versions wrote.
      std::set<size_t> at;
      switch (slip_step) {
      case DemoOptions::SlipStep::Last:
        at = {steps - 1};
        break;
      case DemoOptions::SlipStep::Any:
        at = {static_cast<size_t>(rng.next() % steps)};
        break;
      case DemoOptions::SlipStep::Finds:
        at = finds_steps(row.at("question").get<std::string>());
        break;
      }
      if (!at.empty()) solution = slipped_solution(solution, at);
    }
    row["solution"] = solution;
    sft << row.dump() << "\n";
  }
}

} // namespace

std::set<size_t> finds_steps(const std::string& question) {
  std::set<size_t> at;
  size_t sentence = 0;
  for (size_t begin = 0; begin < question.size(); ++sentence) {
    size_t end = question.find('.', begin);
    if (end == std::string::npos) end = question.size();
    if (sentence > 0 && question.substr(begin, end - begin).find(" finds ") != std::string::npos)
      at.insert(sentence - 1);
    begin = end + 1;
  }
  return at;
}

std::string slipped_solution(const std::string& solution, const std::set<size_t>& slips) {
  std::vector<std::string> lines;
  for (size_t begin = 0;;) {
    const size_t end = solution.find('\n', begin);
    lines.push_back(solution.substr(begin, end == std::string::npos ? end : end - begin));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  const size_t steps = lines.size() - 1;
  if (slips.empty() || *slips.rbegin() >= steps) {
    throw bad_input(
        (slips.empty() ? std::string("no step") : "step " + std::to_string(*slips.rbegin())) +
            " to slip in a solution with " + std::to_string(steps) + " step lines",
        "slipped_solution", "pick step lines before the answer line");
  }
  const size_t first = *slips.begin();
  // Each step line is "value+operand=result" or "value-operand=result", numbers of 1 to 3 digits.
  auto number = [](const std::string& digits) {
    return !digits.empty() && digits.size() <= 3 &&
           std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  int value = 0;
  for (size_t i = 0; i < steps; ++i) {
    const std::string& l = lines[i];
    const size_t op = l.find_first_of("+-"), eq = l.find('=');
    if (op == std::string::npos || eq == std::string::npos || eq < op || !number(l.substr(0, op)) ||
        !number(l.substr(op + 1, eq - op - 1)) || !number(l.substr(eq + 1))) {
      throw bad_input("step line \"" + l + "\" is not value+operand=result", "slipped_solution",
                      "pass a synthetic task's solution");
    }
    const int operand = std::stoi(l.substr(op + 1, eq - op - 1));
    if (i > first) {
      const int result =
          (l[op] == '+' ? value + operand : value - operand) + static_cast<int>(slips.count(i));
      lines[i] =
          std::to_string(value) + l[op] + std::to_string(operand) + "=" + std::to_string(result);
      value = result;
    } else {
      value = std::stoi(l.substr(eq + 1));
      if (i == first) lines[i] = l.substr(0, eq + 1) + std::to_string(++value);
    }
  }
  std::string out;
  for (size_t i = 0; i < steps; ++i) out += lines[i] + "\n";
  return out + "The answer is \\boxed{" + std::to_string(value) + "}.";
}

model::Qwen2Config demo_model_config(int64_t vocab_size, const DemoOptions& options) {
  if (!options.shape.empty()) {
    model::Qwen2Config cfg = model::Qwen2Config::builtin(options.shape, "demo-data --shape");
    if (cfg.vocab_size < vocab_size) {
      throw bad_input("shape '" + options.shape + "' has " + std::to_string(cfg.vocab_size) +
                          " token ids but the demo tokenizer needs " + std::to_string(vocab_size),
                      "demo-data --shape", "use qwen2.5-math-1.5b, or leave --shape out");
    }
    return cfg;
  }
  model::Qwen2Config cfg;
  cfg.vocab_size = vocab_size;
  cfg.hidden_size = options.hidden_size;
  cfg.intermediate_size = options.hidden_size * 3;
  cfg.num_hidden_layers = options.layers;
  cfg.num_attention_heads = 4;
  cfg.num_key_value_heads = 2;
  cfg.max_position_embeddings = 1024;
  cfg.rope_theta = 10000.0;
  cfg.rms_norm_eps = 1e-6;
  cfg.tie_word_embeddings = true;
  cfg.torch_dtype = "float32";
  return cfg;
}

void write_demo_workspace(const std::string& dir, const DemoOptions& options) {
  // An unknown shape is refused before anything is written.
  if (!options.shape.empty()) model::Qwen2Config::builtin(options.shape, "demo-data --shape");
  fs::path data = fs::path(dir) / "data", model_dir = fs::path(dir) / "model";
  write_synthetic_dataset(data.string(), options.train_problems, options.test_problems,
                          options.seed);
  write_sft_split(data / "train.jsonl", data / "sft.jsonl", options.sft_slip_rate,
                  options.sft_slip_step, options.seed);

  std::vector<std::string> texts = {tokenizer::qwen_math_prompt("", tokenizer::kQwenMathSystem),
                                    "system user assistant"};
  std::ifstream in(data / "train.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto row = nlohmann::json::parse(line);
    texts.push_back(row.at("question").get<std::string>());
    texts.push_back(row.at("answer").get<std::string>());
  }
  tokenizer::write_byte_level_tokenizer(model_dir.string(), word_merges(count_words(texts)),
                                        {"<|im_start|>"});
  auto tok = tokenizer::Tokenizer::load(model_dir.string());
  const model::Qwen2Config shape = demo_model_config(tok->vocab_size(), options);
  auto model = model::Qwen2::random(
      shape, options.seed, shape.torch_dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32,
      torch::kCPU);
  // transformers' generate() stops only at generation_config's eos ids: name the ones the rollout
  // engine stops at (<|im_end|>, <|endoftext|>) and the tokenizer's pad; save() keeps this file.
  nlohmann::json generation = {{"eos_token_id", tok->eos_ids()}};
  if (const auto pad = tok->pad_id()) generation["pad_token_id"] = *pad;
  std::ofstream file(model_dir / "generation_config.json");
  file << generation.dump(2) << "\n";
  if (!file.flush()) {
    throw runtime_failure("cannot write generation_config.json", model_dir.string(),
                          "check the folder's permissions and free space");
  }
  file.close();
  model.save(model_dir.string());
}

} // namespace treerpo::train
