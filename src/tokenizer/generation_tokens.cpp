#include "generation_tokens.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "treerpo/util/error.h"

namespace treerpo::tokenizer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::optional<json> read_json(const fs::path& path) {
  if (!fs::exists(path)) return std::nullopt;
  std::ifstream in(path);
  if (!in) throw bad_input("cannot read file", path.string(), "check its permissions");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw bad_input(std::string("not valid JSON: ") + e.what(), path.string(),
                    "fix or re-download the file");
  }
}

// tokenizer_config.json writes tokens as a string or as {"content": "..."} (AddedToken form).
std::optional<std::string> token_text(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content")) return (*it)["content"].get<std::string>();
  return std::nullopt;
}

int32_t id_of(const Tokenizer& tok, const std::string& text, const fs::path& file,
              const char* key) {
  auto id = tok.token_id(text);
  if (!id) {
    throw bad_input(std::string(key) + " \"" + text + "\" is not a token of the vocabulary",
                    file.string(), "fix the config or use the matching tokenizer files");
  }
  return *id;
}

void add_unique(std::vector<int32_t>& ids, int32_t id) {
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

} // namespace

GenerationTokens read_generation_tokens(const std::string& folder, const Tokenizer& tok,
                                        std::optional<int32_t> backend_eos,
                                        std::optional<int32_t> backend_pad) {
  GenerationTokens out;
  if (backend_eos) add_unique(out.eos_ids, *backend_eos);
  out.pad_id = backend_pad;
  if (!folder.empty()) {
    const fs::path tc = fs::path(folder) / "tokenizer_config.json";
    if (auto config = read_json(tc)) {
      if (auto eos = token_text(*config, "eos_token")) {
        add_unique(out.eos_ids, id_of(tok, *eos, tc, "eos_token"));
      }
      if (auto pad = token_text(*config, "pad_token"))
        out.pad_id = id_of(tok, *pad, tc, "pad_token");
    }
    const fs::path gc = fs::path(folder) / "generation_config.json";
    if (auto config = read_json(gc)) {
      const json eos = config->value("eos_token_id", json());
      if (eos.is_number_integer()) add_unique(out.eos_ids, eos.get<int32_t>());
      if (eos.is_array()) {
        for (const json& e : eos) {
          if (!e.is_number_integer())
            throw bad_input("eos_token_id lists a non-integer", gc.string());
          add_unique(out.eos_ids, e.get<int32_t>());
        }
      }
      if (!out.pad_id && config->value("pad_token_id", json()).is_number_integer()) {
        out.pad_id = (*config)["pad_token_id"].get<int32_t>();
      }
    }
  }
  // Chat models end a turn with <|im_end|> and a document with <|endoftext|>; either ends a
  // rollout.
  for (const char* terminator : {"<|im_end|>", "<|endoftext|>"}) {
    if (auto id = tok.token_id(terminator); id && tok.is_special(*id)) add_unique(out.eos_ids, *id);
  }
  return out;
}

} // namespace treerpo::tokenizer
