// Bad tokenizer files are user mistakes: one bad_input error naming the file and the problem.
#include <gtest/gtest.h>

#include "tiny_tokenizer.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/util/error.h"

namespace treerpo::tokenizer {
namespace {

// Loads `path` expecting a bad_input error whose message contains every one of `parts`.
void expect_rejected(const std::string& path, std::initializer_list<std::string> parts) {
  try {
    Tokenizer::load(path);
    ADD_FAILURE() << "loaded " << path;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
    for (const auto& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// A written tokenizer.json with one component replaced.
std::string variant(const std::string& key, const nlohmann::json& value) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {{"a", "b"}}, {});
  auto j = read_json_file(dir / "tokenizer.json");
  j[key] = value;
  write_text_file(dir / "tokenizer.json", j.dump());
  return (dir / "tokenizer.json").string();
}

TEST(Loading, MissingPathIsRejected) {
  expect_rejected("/nonexistent/tok.json", {"/nonexistent/tok.json", "not found"});
}

TEST(Loading, FolderWithoutTokenizerFilesIsRejected) {
  const auto dir = scratch_dir();
  expect_rejected(dir.string(), {dir.string(), "tokenizer.json"});
}

TEST(Loading, CorruptJsonIsRejected) {
  const auto dir = scratch_dir();
  write_text_file(dir / "tokenizer.json", "{\"model\": [1, 2");
  expect_rejected(dir.string(), {"tokenizer.json", "not valid JSON"});
}

// Found by fuzzing (tests/fuzz/tokenizer.cpp): a number beyond double's range is JSON's
// out_of_range, not its parse_error, and escaped as an exit-1 crash of the loader.
TEST(Loading, NumberBeyondDoubleRangeIsRejected) {
  const auto dir = scratch_dir();
  write_text_file(dir / "tokenizer.json", "1e222225221");
  expect_rejected(dir.string(), {"tokenizer.json", "not valid JSON", "number overflow"});
}

// Found by fuzzing (tests/fuzz/tokenizer.cpp): a vocabulary id of 7.7e49 was converted to int32,
// undefined behaviour (UBSan: outside the range of representable values).
TEST(Loading, TokenIdThatIsNotAnInt32IsRejected) {
  for (const nlohmann::json& id : {nlohmann::json(7.7e49), nlohmann::json(-1), nlohmann::json("7"),
                                   nlohmann::json(int64_t{1} << 40)}) {
    expect_rejected(
        variant("model",
                {{"type", "BPE"}, {"vocab", {{"a", id}}}, {"merges", nlohmann::json::array()}}),
        {"token id " + id.dump(), "is not an integer"});
  }
}

// Found by fuzzing (tests/fuzz/tokenizer.cpp, the long run of stop 28): a vocabulary id of 111
// million sized the id tables to 3.5 GB and the loader ran out of memory; 2^31 - 1 would have
// overflowed the table size. Ids from 2^22 on are refused, in the vocab and in added_tokens.
TEST(Loading, TokenIdFarBeyondAnyVocabularyIsRejected) {
  for (int64_t id : {int64_t{111111111}, int64_t{2147483647}, int64_t{1} << 22}) {
    for (bool added : {false, true}) {
      const auto dir = scratch_dir();
      write_byte_level_tokenizer(dir.string(), {{"a", "b"}}, {});
      auto j = read_json_file(dir / "tokenizer.json");
      if (added) {
        j["added_tokens"].push_back({{"id", id},
                                     {"content", "<x>"},
                                     {"special", true},
                                     {"single_word", false},
                                     {"lstrip", false},
                                     {"rstrip", false},
                                     {"normalized", false}});
      } else {
        j["model"]["vocab"]["ab"] = id;
      }
      write_text_file(dir / "tokenizer.json", j.dump());
      expect_rejected(dir.string(),
                      {"token id " + std::to_string(id), "far past any real vocabulary"});
    }
  }
}

TEST(Loading, OtherModelTypeIsNamed) {
  expect_rejected(variant("model", {{"type", "WordPiece"}, {"vocab", nlohmann::json::object()}}),
                  {"WordPiece"});
}

TEST(Loading, OtherNormalizerIsNamed) {
  expect_rejected(variant("normalizer", {{"type", "Lowercase"}}), {"Lowercase"});
}

TEST(Loading, OtherPreTokenizerIsNamed) {
  expect_rejected(variant("pre_tokenizer", {{"type", "Whitespace"}}), {"Whitespace"});
}

TEST(Loading, OtherDecoderIsNamed) {
  expect_rejected(variant("decoder", {{"type", "WordPiece"}}), {"decoder", "WordPiece"});
}

TEST(Loading, MergeOutsideVocabularyIsRejected) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {{"a", "b"}}, {});
  auto j = read_json_file(dir / "tokenizer.json");
  j["model"]["merges"].push_back({"ab", "ab"}); // "abab" is no token
  write_text_file(dir / "tokenizer.json", j.dump());
  expect_rejected(dir.string(), {"merge 1"});
}

TEST(Loading, ConfigNamingUnknownEosIsRejected) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {}, {});
  write_text_file(dir / "tokenizer_config.json", R"({"eos_token": "<|nope|>"})");
  expect_rejected(dir.string(), {"tokenizer_config.json", "<|nope|>"});
}

TEST(Loading, CorruptSentencepieceModelIsRejected) {
  const auto dir = scratch_dir();
  write_text_file(dir / "tokenizer.model", "this is not a protobuf");
  expect_rejected(dir.string(), {"tokenizer.model"});
}

TEST(Loading, UnknownFileTypeIsRejected) {
  const auto dir = scratch_dir();
  write_text_file(dir / "vocab.txt", "a\nb\n");
  expect_rejected((dir / "vocab.txt").string(), {"vocab.txt"});
}

} // namespace
} // namespace treerpo::tokenizer
