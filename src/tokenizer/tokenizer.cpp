// Choosing a backend for a path, and streaming decode on top of any backend.
#include "treerpo/tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "byte_level_bpe.h"
#include "generation_tokens.h"
#include "sentencepiece_tokenizer.h"
#include "treerpo/util/error.h"
#include "utf8.h"

namespace treerpo::tokenizer {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw bad_input("cannot read file", path.string(), "check the path and its permissions");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <class Backend>
std::unique_ptr<Tokenizer>
with_generation_tokens(std::unique_ptr<Backend> tok, const std::string& folder,
                       std::optional<int32_t> backend_eos, std::optional<int32_t> backend_pad) {
  GenerationTokens g = read_generation_tokens(folder, *tok, backend_eos, backend_pad);
  tok->set_generation_tokens(std::move(g.eos_ids), g.pad_id);
  return tok;
}

std::unique_ptr<Tokenizer> load_json(const fs::path& file, const std::string& folder) {
  auto tok = std::make_unique<ByteLevelBpe>(parse_tokenizer_json(read_file(file), file.string()));
  return with_generation_tokens(std::move(tok), folder, std::nullopt, std::nullopt);
}

std::unique_ptr<Tokenizer> load_model(const fs::path& file, const std::string& folder) {
  auto tok = std::make_unique<SentencePieceTokenizer>(file.string());
  const auto eos = tok->model_eos(), pad = tok->model_pad();
  return with_generation_tokens(std::move(tok), folder, eos, pad);
}

} // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  const fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "tokenizer.json")) return load_json(p / "tokenizer.json", path);
    if (fs::exists(p / "tokenizer.model")) return load_model(p / "tokenizer.model", path);
    throw bad_input("the folder has neither tokenizer.json nor tokenizer.model", path,
                    "pass a Hugging Face model folder or a tokenizer file");
  }
  if (!fs::exists(p, ec)) {
    throw bad_input("tokenizer file not found", path, "check the --tokenizer / model path");
  }
  // A file passed directly still takes eos/pad from the config files beside it.
  const std::string folder = p.parent_path().string();
  if (p.extension() == ".json") return load_json(p, folder.empty() ? "." : folder);
  if (p.extension() == ".model") return load_model(p, folder.empty() ? "." : folder);
  throw bad_input("unknown tokenizer file type (expected tokenizer.json or a .model file)", path,
                  "pass a Hugging Face tokenizer.json or a sentencepiece .model");
}

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool skip_special)
    : tok_(&tok), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  const std::string bytes = tok_->token_bytes(id, at_start_, skip_special_);
  at_start_ &= bytes.empty();
  pending_ += bytes;
  // Emit everything except a trailing sequence that is still a valid start of a character; invalid
  // bytes are final, so they are replaced now exactly as a full decode would replace them.
  size_t i = 0, bad;
  bool truncated;
  std::string out;
  while (i < pending_.size()) {
    const size_t n = utf8_sequence(pending_, i, &bad, &truncated);
    if (n > 0) {
      out.append(pending_, i, n);
      i += n;
    } else if (truncated) {
      break;
    } else {
      out += "\xEF\xBF\xBD";
      i += bad;
    }
  }
  pending_.erase(0, i);
  text_ += out;
  return out;
}

} // namespace treerpo::tokenizer
