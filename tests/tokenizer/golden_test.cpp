// Qwen's tokenizer.json against the ids and texts the Hugging Face tokenizers library produced for
// the committed corpus (regenerate with scripts/gen_tokenizer_golden.py; the oracle test
// tokenizer_golden holds the files equal to its output).
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::tokenizer {
namespace {

using nlohmann::json;

std::vector<json> read_jsonl(const std::string& name) {
  std::ifstream in(std::string(TREERPO_SOURCE_DIR) + "/tests/tokenizer/golden/" + name);
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

class QwenGolden : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    const std::string dir = std::string(TREERPO_SHARED_DIR) + "/tokenizers/qwen";
    if (std::ifstream(dir + "/tokenizer.json")) tok_ = Tokenizer::load(dir).release();
    for (const json& row : read_jsonl("corpus.jsonl")) texts_.push_back(row["text"]);
    for (const json& row : read_jsonl("qwen_ids.jsonl")) ids_.push_back(row["ids"]);
  }
  static void TearDownTestSuite() { delete tok_; }
  void SetUp() override {
    if (!tok_) GTEST_SKIP() << "no " TREERPO_SHARED_DIR "/tokenizers/qwen/tokenizer.json";
  }
  static const Tokenizer* tok_;
  static std::vector<std::string> texts_;
  static std::vector<std::vector<int32_t>> ids_;
};
const Tokenizer* QwenGolden::tok_ = nullptr;
std::vector<std::string> QwenGolden::texts_;
std::vector<std::vector<int32_t>> QwenGolden::ids_;

TEST_F(QwenGolden, CorpusIsLargeAndAligned) {
  EXPECT_GE(texts_.size(), 2000u);
  EXPECT_EQ(texts_.size(), ids_.size());
}

TEST_F(QwenGolden, EveryIdMatchesHuggingFace) {
  size_t mismatches = 0;
  for (size_t i = 0; i < texts_.size(); ++i) {
    const std::vector<int32_t> got = tok_->encode(texts_[i]);
    if (got != ids_[i] && ++mismatches <= 10) {
      ADD_FAILURE() << "corpus line " << i + 1 << ": " << json(texts_[i]).dump() << "\n  expected "
                    << json(ids_[i]).dump() << "\n  got      " << json(got).dump();
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST_F(QwenGolden, DecodeOfEncodeIsNfcOfText) {
  for (size_t i = 0; i < texts_.size(); ++i) {
    EXPECT_EQ(tok_->decode(tok_->encode(texts_[i])), nfc(texts_[i])) << "corpus line " << i + 1;
  }
}

TEST_F(QwenGolden, StreamingDecodeEqualsFullDecode) {
  for (size_t i = 0; i < ids_.size(); ++i) {
    StreamDecoder stream(*tok_);
    std::string pieces;
    for (int32_t id : ids_[i]) pieces += stream.push(id);
    EXPECT_EQ(pieces, stream.text());
    EXPECT_EQ(stream.text(), tok_->decode(ids_[i])) << "corpus line " << i + 1;
    EXPECT_TRUE(stream.pending().empty());
  }
}

TEST_F(QwenGolden, DecodeMatchesHuggingFaceOnCutCharactersAndSpecials) {
  for (const json& row : read_jsonl("qwen_decode.jsonl")) {
    const std::vector<int32_t> ids = row["ids"];
    EXPECT_EQ(tok_->decode(ids, row["skip_special"].get<bool>()), row["text"].get<std::string>())
        << row.dump();
  }
}

TEST_F(QwenGolden, KnowsQwenSpecialTokens) {
  EXPECT_EQ(tok_->token_id("<|im_start|>"), 151644);
  EXPECT_EQ(tok_->token_id("<|im_end|>"), 151645);
  EXPECT_EQ(tok_->token_id("Ġthe"), 279); // HF: token_to_id("Ġthe")
  EXPECT_FALSE(tok_->token_id("not a token at all").has_value());
  EXPECT_TRUE(tok_->is_special(151643));
  EXPECT_FALSE(tok_->is_special(151657)); // <tool_call> is added but not special
  EXPECT_FALSE(tok_->is_special(279));
  EXPECT_EQ(tok_->pad_id(), 151643); // tokenizer_config pad_token <|endoftext|>
  const std::vector<int32_t> eos = tok_->eos_ids();
  EXPECT_EQ(eos.front(), 151645); // tokenizer_config eos_token <|im_end|>
  EXPECT_NE(std::find(eos.begin(), eos.end(), 151643), eos.end());
  EXPECT_GE(tok_->vocab_size(), 151665);
}

TEST_F(QwenGolden, SkipSpecialDropsOnlySpecialTokens) {
  const std::vector<int32_t> ids = tok_->encode("<|im_start|>user\nhi<|im_end|><tool_call>");
  EXPECT_EQ(tok_->decode(ids, true), "user\nhi<tool_call>");
}

} // namespace
} // namespace treerpo::tokenizer
