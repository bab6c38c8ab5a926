// `treerpo-train generate`: continuations of prompts with the rollout engine (greedy by default, or
// HF-style sampling), one JSON line per input line. The transformers parity test holds its greedy
// output equal to `generate(do_sample=False)`. Each batch's timing goes to stderr (stdout carries
// the JSONL results only); scripts/peers/decode_throughput.py reads it.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/types.h>

#include "command.h"
#include "decode_options.h"
#include "device_options.h"
#include "treerpo/model/paged_attention.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/rollout/engine.h"
#include "treerpo/rollout/qwen2_branches.h"
#include "treerpo/tokenizer/chat.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/util/error.h"

namespace treerpo::cli {
namespace {

namespace fs = std::filesystem;

struct GenerateOptions {
  std::string model, input, device = "cpu", dtype = "float32", decode_attention = "torch",
                            decode_shapes = "dynamic";
  bool chat = false;
  int64_t max_new_tokens = 256, batch = 8;
  double temperature = 0.0, top_p = 1.0, repetition_penalty = 1.0;
  int64_t top_k = 0;
  uint64_t seed = 0;
};

void validate(const GenerateOptions& o) {
  if (o.max_new_tokens < 1) throw bad_input("must be at least 1", "--max-new-tokens");
  if (o.batch < 1) throw bad_input("must be at least 1", "--batch");
  if (!(o.temperature >= 0.0)) throw bad_input("must be >= 0 (0 = greedy)", "--temperature");
  if (!(o.top_p > 0.0 && o.top_p <= 1.0)) throw bad_input("must be in (0, 1]", "--top-p");
  if (o.top_k < 0) throw bad_input("must be >= 0 (0 = off)", "--top-k");
  if (!(o.repetition_penalty > 0.0)) {
    throw bad_input("must be > 0 (1 = off)", "--repetition-penalty");
  }
}

// Without a tokenizer the generation ends at the folder's eos_token_id, as transformers reads it:
// generation_config.json first, then config.json (an id or a list of ids).
std::vector<int32_t> folder_eos_ids(const std::string& folder) {
  for (const char* name : {"generation_config.json", "config.json"}) {
    const fs::path path = fs::path(folder) / name;
    std::ifstream in(path);
    if (!in) continue;
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      throw bad_input("not a JSON object", path.string(), "fix or remove the file");
    }
    if (!j.contains("eos_token_id")) continue;
    const nlohmann::json& eos = j["eos_token_id"];
    std::vector<int32_t> ids;
    if (eos.is_number_integer()) ids.push_back(eos.get<int32_t>());
    if (eos.is_array()) {
      for (const auto& id : eos) {
        if (id.is_number_integer()) ids.push_back(id.get<int32_t>());
      }
    }
    return ids;
  }
  return {};
}

// Generation from ids alone needs no text: the grpo shape never reads it.
class NoText : public rollout::TextStream {
public:
  std::string push(int32_t) override { return {}; }
  std::unique_ptr<rollout::TextStream> clone() const override { return std::make_unique<NoText>(); }
};

std::vector<int32_t> prompt_ids(const nlohmann::json& j, const std::string& where,
                                const tokenizer::Tokenizer* tok, bool chat, int64_t vocab) {
  std::vector<int32_t> ids;
  if (j.is_object() && j.contains("ids") && j["ids"].is_array()) {
    for (const auto& v : j["ids"]) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab) {
        throw bad_input(
            "token id " + v.dump() + " outside the vocabulary of " + std::to_string(vocab), where);
      }
      ids.push_back(v.get<int32_t>());
    }
  } else if (j.is_object() && j.contains("prompt") && j["prompt"].is_string()) {
    if (!tok) {
      throw bad_input("a text prompt needs a tokenizer, and the model folder has none", where,
                      R"(write {"ids": [...]} or add tokenizer.json to the folder)");
    }
    const std::string prompt = j["prompt"].get<std::string>();
    ids = tok->encode(chat ? tokenizer::qwen_math_prompt(prompt) : prompt);
  } else {
    throw bad_input(R"(expected {"ids": [...]} or {"prompt": "..."})", where);
  }
  if (ids.empty()) throw bad_input("the prompt has no tokens", where);
  return ids;
}

void run_generate(const GenerateOptions& o) {
  validate(o);
  const torch::Device device = parse_device(o.device);
  const torch::Dtype dtype = parse_dtype(o.dtype);
  const model::DecodeAttention attention = parse_decode_attention(o.decode_attention, "");
  const rollout::DecodeShapes shapes = parse_decode_shapes(o.decode_shapes, attention, device, "");
  model::Qwen2 model = model::Qwen2::load(o.model, dtype, device);
  std::unique_ptr<tokenizer::Tokenizer> tok;
  const fs::path folder(o.model);
  if (fs::exists(folder / "tokenizer.json") || fs::exists(folder / "tokenizer.model")) {
    tok = tokenizer::Tokenizer::load(o.model);
  }

  std::ifstream file;
  if (o.input != "-") {
    file.open(o.input);
    if (!file) throw bad_input("cannot open input", o.input, "pass a JSONL file or - for stdin");
  }
  std::istream& in = o.input == "-" ? std::cin : file;
  std::vector<rollout::PromptInput> prompts;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = (o.input == "-" ? "stdin" : o.input) + ":" + std::to_string(number);
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) throw bad_input("not a JSON object", where);
    prompts.push_back({"", "", prompt_ids(j, where, tok.get(), o.chat, model.config().vocab_size)});
  }

  rollout::RolloutSetup setup;
  RolloutConfig& c = setup.config;
  c.algorithm = "grpo"; // one sample per prompt: plain decoding
  c.samples = 1;
  c.temperature = o.temperature;
  c.top_p = o.top_p;
  c.top_k = o.top_k;
  c.repetition_penalty = o.repetition_penalty;
  c.max_node_tokens = c.max_answer_tokens = o.max_new_tokens;
  setup.eos_ids = tok ? tok->eos_ids() : folder_eos_ids(o.model);
  setup.seed = o.seed;
  const rollout::TextStreamFactory text =
      tok ? rollout::tokenizer_streams(*tok)
          : rollout::TextStreamFactory([] { return std::make_unique<NoText>(); });

  torch::NoGradGuard no_grad;
  const auto count = static_cast<int64_t>(prompts.size());
  for (int64_t begin = 0; begin < count; begin += o.batch) {
    const int64_t end = std::min(count, begin + o.batch);
    const std::vector<rollout::PromptInput> batch(prompts.begin() + begin, prompts.begin() + end);
    size_t longest = 0;
    for (const auto& p : batch) longest = std::max(longest, p.prompt_ids.size());
    // The engine starts a prompt only while it keeps a slot and a KV block in hand per root child
    // plus one (engine.cpp make_plan: 2 for one sample). Two slots a row and each row's context in
    // whole blocks, plus the two in hand, let the whole batch prefill in the first step and decode
    // together to the end.
    const int64_t rows = end - begin, block = RolloutConfig{}.kv_block_tokens;
    const int64_t row_blocks =
        (static_cast<int64_t>(longest) + o.max_new_tokens + block - 1) / block;
    rollout::Qwen2Branches branches(model, 2 * rows, (rows * row_blocks + 2) * block, block, dtype,
                                    device, attention, shapes,
                                    static_cast<int64_t>(longest) + o.max_new_tokens);
    // The first step prefills the prompts and samples their first tokens; the steps after it are
    // the decode. Each step ends in a host transfer of the draws, so its clock is synchronised.
    rollout::RolloutStats first, last;
    const auto trees = rollout::grow_trees(
        branches, text, setup, batch,
        [&first](const rollout::RolloutStats& s) {
          if (s.step == 1) first = s;
        },
        &last);
    const int64_t decode_tokens = last.tokens_generated - first.tokens_generated;
    const double decode_seconds = last.seconds - first.seconds;
    spdlog::info("generate: {} prompts, prefill and first tokens in {:.4f} s, then {} decode "
                 "steps: {} tokens in {:.4f} s ({:.1f} tok/s), {} CUDA graphs captured",
                 batch.size(), first.seconds, last.step - first.step, decode_tokens, decode_seconds,
                 decode_seconds > 0 ? decode_tokens / decode_seconds : 0.0, branches.graphs());
    for (const rollout::Tree& tree : trees) {
      const std::vector<int32_t> ids = tree.answer_ids(tree.root().children.front());
      const bool stopped =
          !ids.empty() && std::count(setup.eos_ids.begin(), setup.eos_ids.end(), ids.back()) > 0;
      nlohmann::json out = {{"ids", ids}, {"stopped", stopped}};
      if (tok) out["text"] = tok->decode(ids);
      std::cout << out.dump() << "\n";
    }
    std::cout.flush();
  }
}

} // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand(
      "generate", "Continue prompts with the rollout engine (greedy unless --temperature > 0)");
  cmd->add_option("--model", o->model, "Hugging Face model folder")->required();
  cmd->add_option("--input", o->input,
                  R"(JSONL: {"ids": [...]} or {"prompt": "..."} per line; - for stdin)")
      ->required();
  cmd->add_flag("--chat", o->chat, "Wrap text prompts in the Qwen math chat template");
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "generated tokens per prompt at most")
      ->capture_default_str();
  cmd->add_option("--batch", o->batch, "prompts decoded together")->capture_default_str();
  cmd->add_option("--temperature", o->temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "nucleus mass (1 = off)")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "top-k (0 = off)")->capture_default_str();
  cmd->add_option("--repetition-penalty", o->repetition_penalty, "HF repetition penalty (1 = off)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "sampling seed")->capture_default_str();
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N");
  cmd->add_option("--dtype", o->dtype, "float32 | bfloat16");
  cmd->add_option("--decode-attention", o->decode_attention,
                  "torch (gather the KV blocks for SDPA) | paged_kernel (read them in place)")
      ->capture_default_str();
  cmd->add_option("--decode-shapes", o->decode_shapes,
                  "dynamic (each step its own batch) | fixed (steps padded to batch buckets) | "
                  "cuda_graphs (fixed, replayed as CUDA graphs); fixed and cuda_graphs run the "
                  "paged kernel")
      ->capture_default_str();
  cmd->callback([o] { run_generate(*o); });
}

} // namespace treerpo::cli
