// Reading HF tokenizer.json into a ByteLevelBpeSpec. Only what the byte-level BPE path implements
// is accepted; every other component is rejected by name rather than silently ignored.
#include <limits>

#include <nlohmann/json.hpp>

#include "byte_level.h"
#include "byte_level_bpe.h"
#include "treerpo/util/error.h"

namespace treerpo::tokenizer {
namespace {

using nlohmann::json;

// GPT-2's split, which HF's ByteLevel pre-tokenizer applies when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

[[noreturn]] void reject(const std::string& what, const std::string& source) {
  throw bad_input(
      what, source,
      "only byte-level BPE tokenizer.json files (GPT-2 / Qwen2 / Llama-3 style) are supported");
}

// A token id: a JSON integer in [0, 2^31). Converting anything else (7.7e49, a string) to int32
// would be undefined behaviour or an escaped JSON exception. Found by fuzzing tokenizer.json.
int32_t token_id(const json& value, const std::string& source) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() > std::numeric_limits<int32_t>::max())
    reject("token id " + value.dump() + " is not an integer in [0, 2^31)", source);
  return static_cast<int32_t>(value.get<int64_t>());
}

std::string type_of(const json& j) {
  return j.is_object() ? j.value("type", std::string()) : "";
}

bool flag(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? fallback : it->get<bool>();
}

std::string raw_bytes(const std::string& symbols, const std::string& what,
                      const std::string& source) {
  auto bytes = symbols_to_bytes(symbols);
  if (!bytes) reject(what + " \"" + symbols + "\" is not written in byte-level symbols", source);
  return *bytes;
}

void parse_model(const json& model, ByteLevelBpeSpec& spec) {
  const std::string& src = spec.source;
  if (!model.is_object()) reject("\"model\" is missing", src);
  const std::string type = type_of(model);
  if (!type.empty() && type != "BPE") reject("model type " + type + " is not supported", src);
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      model["dropout"].get<double>() > 0) {
    reject("BPE dropout is not supported (encoding must be deterministic)", src);
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty()) {
      reject(std::string("BPE ") + key + " is not supported", src);
    }
  }
  spec.ignore_merges = flag(model, "ignore_merges", false);
  if (!model.contains("vocab") || !model["vocab"].is_object())
    reject("model.vocab is missing", src);
  spec.vocab.reserve(model["vocab"].size());
  for (const auto& [symbols, id] : model["vocab"].items()) {
    spec.vocab.emplace(raw_bytes(symbols, "vocabulary token", src), token_id(id, src));
  }
  if (!model.contains("merges") || !model["merges"].is_array())
    reject("model.merges is missing", src);
  spec.merges.reserve(model["merges"].size());
  for (const json& m : model["merges"]) {
    std::string a, b;
    if (m.is_string()) {
      // "a b": HF splits at the first space (byte-level symbols never contain a plain space).
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos) reject("merge \"" + s + "\" is not of the form \"a b\"", src);
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      reject("merge " + m.dump() + " is neither \"a b\" nor [\"a\", \"b\"]", src);
    }
    spec.merges.emplace_back(raw_bytes(a, "merge part", src), raw_bytes(b, "merge part", src));
  }
}

void parse_normalizer(const json& n, ByteLevelBpeSpec& spec) {
  if (n.is_null()) return;
  const std::string type = type_of(n);
  if (type == "NFC") {
    spec.nfc = true;
  } else if (type == "Sequence") {
    for (const json& inner : n.value("normalizers", json::array())) parse_normalizer(inner, spec);
  } else {
    reject("normalizer " + (type.empty() ? n.dump() : type) + " is not supported (only NFC)",
           spec.source);
  }
}

void parse_pre_tokenizer(const json& p, ByteLevelBpeSpec& spec, bool& byte_level_seen) {
  const std::string& src = spec.source;
  const std::string type = type_of(p);
  if (byte_level_seen) reject("pre_tokenizer " + type + " after ByteLevel is not supported", src);
  if (type == "Sequence") {
    for (const json& inner : p.value("pretokenizers", json::array())) {
      parse_pre_tokenizer(inner, spec, byte_level_seen);
    }
  } else if (type == "Split") {
    const std::string behavior = p.value("behavior", std::string());
    if (behavior != "Isolated") {
      reject("Split behavior " + behavior + " is not supported (only Isolated)", src);
    }
    if (flag(p, "invert", false)) reject("Split with invert: true is not supported", src);
    const json& pattern = p.at("pattern");
    ByteLevelBpeSpec::PreStep step;
    if (pattern.contains("Regex")) {
      step.pattern = pattern["Regex"].get<std::string>();
    } else if (pattern.contains("String")) {
      step.pattern = pattern["String"].get<std::string>();
      step.literal = true;
    } else {
      reject("Split pattern " + pattern.dump() + " is neither Regex nor String", src);
    }
    spec.pre_steps.push_back(step);
  } else if (type == "ByteLevel") {
    byte_level_seen = true;
    ByteLevelBpeSpec::PreStep step;
    step.add_prefix_space = flag(p, "add_prefix_space", true);
    if (flag(p, "use_regex", true)) step.pattern = kGpt2Pattern;
    spec.pre_steps.push_back(step);
  } else {
    reject("pre_tokenizer " + (type.empty() ? p.dump() : type) +
               " is not supported (only Sequence, Split, ByteLevel)",
           src);
  }
}

void parse_added_tokens(const json& added, ByteLevelBpeSpec& spec) {
  if (added.is_null()) return;
  for (const json& t : added) {
    AddedToken tok;
    tok.id = token_id(t.at("id"), spec.source);
    tok.content = t.at("content").get<std::string>();
    tok.special = flag(t, "special", false);
    tok.lstrip = flag(t, "lstrip", false);
    tok.rstrip = flag(t, "rstrip", false);
    // HF: a token is matched in the normalised text unless it says otherwise; special ones never
    // are.
    tok.normalized = flag(t, "normalized", !tok.special);
    if (flag(t, "single_word", false)) {
      reject("added token \"" + tok.content + "\" uses single_word, which is not supported",
             spec.source);
    }
    spec.added.push_back(std::move(tok));
  }
}

} // namespace

ByteLevelBpeSpec parse_tokenizer_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) { // parse_error, or out_of_range for a number like 1e999
    throw bad_input(std::string("not valid JSON: ") + e.what(), source,
                    "re-download the tokenizer.json");
  }
  ByteLevelBpeSpec spec;
  spec.source = source;
  try {
    if (!j.is_object()) reject("the top level is not a JSON object", source);
    parse_model(j.value("model", json()), spec);
    parse_normalizer(j.value("normalizer", json()), spec);
    bool byte_level_seen = false;
    const json pre = j.value("pre_tokenizer", json());
    if (!pre.is_null()) parse_pre_tokenizer(pre, spec, byte_level_seen);
    if (!byte_level_seen) reject("pre_tokenizer has no ByteLevel step", source);
    const json decoder = j.value("decoder", json());
    if (type_of(decoder) != "ByteLevel") {
      reject("decoder " + (decoder.is_null() ? std::string("null") : type_of(decoder)) +
                 " is not supported (only ByteLevel)",
             source);
    }
    parse_added_tokens(j.value("added_tokens", json()), spec);
  } catch (const json::exception& e) {
    throw bad_input(std::string("unexpected structure: ") + e.what(), source,
                    "re-download the tokenizer.json");
  }
  return spec;
}

} // namespace treerpo::tokenizer
