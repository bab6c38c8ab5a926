// `treerpo-train score`: log-probabilities of completions under a model, one JSON line per input
// line. Users use it for log-likelihoods; the transformers parity test
// (tests/oracles/test_model_parity.py) compares it with Qwen2ForCausalLM.
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"
#include "device_options.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/tokenizer/chat.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/util/error.h"

namespace treerpo::cli {
namespace {

struct ScoreOptions {
  std::string model, input, dtype = "float32", device = "cpu";
  bool chat = false;
};

// One input line as ids: the whole sequence and how many leading ids are the prompt.
struct Scored {
  std::vector<int32_t> ids;
  size_t prompt_len = 0;
};

std::vector<int32_t> id_list(const nlohmann::json& j, int64_t vocab, const std::string& where) {
  if (!j.is_array()) throw bad_input("\"ids\" must be an array of token ids", where);
  std::vector<int32_t> ids;
  for (const auto& v : j) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab) {
      throw bad_input(
          "token id " + v.dump() + " outside the vocabulary of " + std::to_string(vocab), where);
    }
    ids.push_back(v.get<int32_t>());
  }
  return ids;
}

Scored parse_line(const std::string& line, const std::string& where, int64_t vocab, bool chat,
                  const std::function<const tokenizer::Tokenizer&()>& tok) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    throw bad_input(
        "not a JSON object", where,
        R"(write {"ids": [...], "prompt_len": n} or {"prompt": ..., "completion": ...})");
  }
  Scored s;
  if (j.is_object() && j.contains("ids")) {
    s.ids = id_list(j["ids"], vocab, where);
    if (!j.contains("prompt_len") || !j["prompt_len"].is_number_unsigned() ||
        j["prompt_len"].get<size_t>() < 1 || j["prompt_len"].get<size_t>() > s.ids.size()) {
      throw bad_input("\"prompt_len\" must be between 1 and the number of ids", where,
                      "the first token has no context to be scored in");
    }
    s.prompt_len = j["prompt_len"].get<size_t>();
  } else if (j.is_object() && j.contains("prompt") && j.contains("completion") &&
             j["prompt"].is_string() && j["completion"].is_string()) {
    const std::string prompt = j["prompt"].get<std::string>();
    s.ids = tok().encode(chat ? tokenizer::qwen_math_prompt(prompt) : prompt);
    if (s.ids.empty()) throw bad_input("the prompt encodes to no tokens", where);
    s.prompt_len = s.ids.size();
    for (int32_t id : tok().encode(j["completion"].get<std::string>())) s.ids.push_back(id);
    for (int32_t id : s.ids) {
      if (id >= vocab) {
        throw bad_input("tokenizer id " + std::to_string(id) + " exceeds the model vocabulary",
                        where, "use the tokenizer that belongs to the model");
      }
    }
  } else {
    throw bad_input("expected \"ids\" + \"prompt_len\" or \"prompt\" + \"completion\" strings",
                    where);
  }
  return s;
}

void run_score(const ScoreOptions& opt) {
  const torch::Device device = parse_device(opt.device);
  const torch::Dtype dtype = parse_dtype(opt.dtype);
  model::Qwen2 qwen = model::Qwen2::load(opt.model, dtype, device);
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  auto tok = [&]() -> const tokenizer::Tokenizer& {
    if (!tokenizer) tokenizer = tokenizer::Tokenizer::load(opt.model);
    return *tokenizer;
  };

  std::ifstream file;
  if (opt.input != "-") {
    file.open(opt.input);
    if (!file) throw bad_input("cannot open input", opt.input, "pass a JSONL file or - for stdin");
  }
  std::istream& in = opt.input == "-" ? std::cin : file;
  torch::NoGradGuard no_grad;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where =
        (opt.input == "-" ? "stdin" : opt.input) + ":" + std::to_string(number);
    Scored s = parse_line(line, where, qwen.config().vocab_size, opt.chat, tok);
    torch::Tensor logprobs = torch::log_softmax(qwen.forward(s.ids), -1).to(torch::kCPU);
    nlohmann::json out = nlohmann::json::array();
    for (size_t t = s.prompt_len; t < s.ids.size(); ++t) {
      out.push_back(logprobs[static_cast<int64_t>(t) - 1][s.ids[t]].item<double>());
    }
    std::cout << nlohmann::json{{"logprobs", out}}.dump() << "\n";
  }
  std::cout.flush();
}

} // namespace

void add_score_command(CLI::App& app) {
  auto opt = std::make_shared<ScoreOptions>();
  auto* cmd = app.add_subcommand(
      "score",
      "Log-probability of each completion token given its prompt, one JSON line per input");
  cmd->add_option("--model", opt->model, "Hugging Face model folder")->required();
  cmd->add_option(
         "--input", opt->input,
         R"(JSONL: {"ids": [...], "prompt_len": n} or {"prompt": ..., "completion": ...}; - for stdin)")
      ->required();
  cmd->add_flag("--chat", opt->chat, "Wrap text prompts in the Qwen math chat template");
  cmd->add_option("--dtype", opt->dtype, "float32 | bfloat16");
  cmd->add_option("--device", opt->device, "cpu | cuda | cuda:N");
  cmd->callback([opt] { run_score(*opt); });
}

} // namespace treerpo::cli
