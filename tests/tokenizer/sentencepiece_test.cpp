// The sentencepiece backend on a model trained here with sentencepiece's own trainer.
#include <gtest/gtest.h>
#include <sentencepiece_trainer.h>

#include "tiny_tokenizer.h"
#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::tokenizer {
namespace {

class SentencePiece : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ =
        new std::filesystem::path(std::filesystem::temp_directory_path() / "treerpo_tokenizer_spm");
    std::filesystem::remove_all(*dir_);
    std::filesystem::create_directories(*dir_);
    std::string text;
    for (int i = 0; i < 200; ++i) {
      text += "Natalia sold " + std::to_string(i) + " clips to her friends in April.\n";
      text += "Weng earns $12 an hour for babysitting; how much did she earn?\n";
    }
    write_text_file(*dir_ / "train.txt", text);
    const auto status = sentencepiece::SentencePieceTrainer::Train(
        "--input=" + (*dir_ / "train.txt").string() +
        " --model_prefix=" + (*dir_ / "tokenizer").string() +
        " --vocab_size=320 --model_type=bpe --byte_fallback=true --character_coverage=1.0"
        " --hard_vocab_limit=false --minloglevel=2");
    ASSERT_TRUE(status.ok()) << status.ToString();
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::filesystem::path* dir_;
};
std::filesystem::path* SentencePiece::dir_ = nullptr;

TEST_F(SentencePiece, RoundTripsSeenAndUnseenText) {
  const auto tok = Tokenizer::load((*dir_ / "tokenizer.model").string());
  for (const std::string text : {"Natalia sold 48 clips.", "Weng earns $12 an hour",
                                 "unseen: \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x99\x82"}) {
    const auto ids = tok->encode(text);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok->decode(ids), text);
  }
}

TEST_F(SentencePiece, FrequentTextUsesMergedPieces) {
  const auto tok = Tokenizer::load((*dir_ / "tokenizer.model").string());
  const std::string text = "Natalia sold clips";
  EXPECT_LT(tok->encode(text).size(), text.size());
  // U+2581 marks a word start in sentencepiece pieces; "▁s" is among the first merges of this text.
  EXPECT_TRUE(tok->token_id("\xE2\x96\x81s").has_value());
  EXPECT_FALSE(tok->token_id("no such piece").has_value());
}

TEST_F(SentencePiece, ControlPiecesInTextAreRecognised) {
  const auto tok = Tokenizer::load((*dir_ / "tokenizer.model").string());
  // sentencepiece defaults: <unk> 0, <s> 1, </s> 2.
  const auto ids = tok->encode("<s>Natalia</s>");
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_TRUE(tok->is_special(1));
  EXPECT_EQ(tok->eos_ids(), (std::vector<int32_t>{2}));
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), "Natalia");
}

TEST_F(SentencePiece, StreamingDecodeEqualsFullDecode) {
  const auto tok = Tokenizer::load(dir_->string() + "/tokenizer.model");
  const std::string text = "Weng sold \xE6\x97\xA5 clips \xF0\x9F\x99\x82 in April.";
  const auto ids = tok->encode(text);
  StreamDecoder s(*tok);
  for (int32_t id : ids) s.push(id);
  EXPECT_EQ(s.text(), tok->decode(ids));
  EXPECT_EQ(s.text(), text);
}

TEST_F(SentencePiece, FolderWithModelFileLoads) {
  const auto folder = *dir_ / "folder";
  std::filesystem::create_directories(folder);
  std::filesystem::copy_file(*dir_ / "tokenizer.model", folder / "tokenizer.model",
                             std::filesystem::copy_options::overwrite_existing);
  const auto tok = Tokenizer::load(folder.string());
  EXPECT_EQ(tok->decode(tok->encode("Natalia sold clips")), "Natalia sold clips");
}

} // namespace
} // namespace treerpo::tokenizer
