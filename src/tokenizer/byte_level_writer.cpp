#include "treerpo/tokenizer/byte_level_writer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "byte_level.h"
#include "treerpo/util/error.h"

namespace treerpo::tokenizer {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

// Qwen2's split regex, so a written tokenizer pre-tokenizes exactly like Qwen's.
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

void write_json(const fs::path& path, const ordered_json& j) {
  std::ofstream out(path);
  out << j.dump(2, ' ', false) << '\n';
  if (!out)
    throw runtime_failure("cannot write file", path.string(), "check disk space and permissions");
}

ordered_json byte_level_component(const char* type) {
  return {
      {"type", type}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
}

} // namespace

void write_byte_level_tokenizer(const std::string& dir,
                                const std::vector<std::pair<std::string, std::string>>& merges,
                                const std::vector<std::string>& special_tokens) {
  std::map<std::string, int32_t> vocab; // raw bytes -> id
  std::vector<std::string> symbols_by_id;
  const auto add = [&](const std::string& bytes) {
    vocab.emplace(bytes, static_cast<int32_t>(symbols_by_id.size()));
    symbols_by_id.push_back(bytes_to_symbols(bytes));
  };
  for (int b = 0; b < 256; ++b) add(std::string(1, static_cast<char>(b)));
  ordered_json merge_list = ordered_json::array();
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& [a, b] = merges[i];
    if (!vocab.count(a) || !vocab.count(b)) {
      throw bad_input("merge " + std::to_string(i) + " (\"" + a + "\", \"" + b +
                          "\") uses a piece that is neither a byte nor an earlier merge",
                      dir, "order the merges so each piece exists before it is used");
    }
    if (vocab.count(a + b)) {
      throw bad_input("merge " + std::to_string(i) + " (\"" + a + "\", \"" + b +
                          "\") repeats an existing token",
                      dir, "remove the duplicate merge");
    }
    add(a + b);
    merge_list.push_back({bytes_to_symbols(a), bytes_to_symbols(b)});
  }
  std::vector<std::string> specials = special_tokens;
  for (const char* required : {"<|endoftext|>", "<|im_end|>"}) {
    if (std::find(specials.begin(), specials.end(), required) == specials.end()) {
      specials.push_back(required);
    }
  }
  ordered_json vocab_json = ordered_json::object();
  for (size_t id = 0; id < symbols_by_id.size(); ++id) vocab_json[symbols_by_id[id]] = id;
  ordered_json added = ordered_json::array();
  for (size_t i = 0; i < specials.size(); ++i) {
    added.push_back({{"id", symbols_by_id.size() + i},
                     {"content", specials[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  ordered_json tokenizer = {{"version", "1.0"},
                            {"truncation", nullptr},
                            {"padding", nullptr},
                            {"added_tokens", added},
                            {"normalizer", {{"type", "NFC"}}},
                            {"pre_tokenizer",
                             {{"type", "Sequence"},
                              {"pretokenizers",
                               {{{"type", "Split"},
                                 {"pattern", {{"Regex", kQwen2Pattern}}},
                                 {"behavior", "Isolated"},
                                 {"invert", false}},
                                byte_level_component("ByteLevel")}}}},
                            {"post_processor", byte_level_component("ByteLevel")},
                            {"decoder", byte_level_component("ByteLevel")},
                            {"model",
                             {{"type", "BPE"},
                              {"dropout", nullptr},
                              {"unk_token", nullptr},
                              {"continuing_subword_prefix", ""},
                              {"end_of_word_suffix", ""},
                              {"fuse_unk", false},
                              {"byte_fallback", false},
                              {"ignore_merges", false},
                              {"vocab", vocab_json},
                              {"merges", merge_list}}}};
  ordered_json config = {{"tokenizer_class", "Qwen2Tokenizer"},
                         {"add_bos_token", false},
                         {"add_prefix_space", false},
                         {"bos_token", nullptr},
                         {"eos_token", "<|im_end|>"},
                         {"pad_token", "<|endoftext|>"},
                         {"unk_token", nullptr},
                         {"clean_up_tokenization_spaces", false},
                         {"model_max_length", 32768}};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw runtime_failure("cannot create folder: " + ec.message(), dir, "check permissions");
  write_json(fs::path(dir) / "tokenizer.json", tokenizer);
  write_json(fs::path(dir) / "tokenizer_config.json", config);
}

} // namespace treerpo::tokenizer
