// Streaming decode emits text only at complete UTF-8 characters (ids 0..255 of a written tokenizer
// are single bytes, so characters can be cut anywhere), and repairs invalid bytes as Rust's
// from_utf8_lossy.
#include <gtest/gtest.h>

#include "tiny_tokenizer.h"
#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::tokenizer {
namespace {

const char* kReplacement = "\xEF\xBF\xBD";

class Streaming : public ::testing::Test {
protected:
  void SetUp() override {
    const auto dir = scratch_dir();
    write_byte_level_tokenizer(dir.string(), {}, {"<|im_start|>"});
    tok_ = Tokenizer::load(dir.string());
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(Streaming, HoldsBackBytesOfAnUnfinishedCharacter) {
  StreamDecoder s(*tok_);
  EXPECT_EQ(s.push('a'), "a");
  EXPECT_EQ(s.push(0xE4), ""); // U+4F60 is E4 BD A0
  EXPECT_EQ(s.push(0xBD), "");
  EXPECT_EQ(s.pending(), "\xE4\xBD");
  EXPECT_EQ(s.push(0xA0), "\xE4\xBD\xA0");
  EXPECT_EQ(s.text(), "a\xE4\xBD\xA0");
}

TEST_F(Streaming, InvalidBytesAreReplacedAtOnce) {
  StreamDecoder s(*tok_);
  EXPECT_EQ(s.push(0xFF), kReplacement);
  EXPECT_EQ(s.push(0xE4), "");
  EXPECT_EQ(s.push('a'), std::string(kReplacement) + "a"); // E4 cannot be followed by 'a'
}

TEST_F(Streaming, CopyForksTheDecoderState) {
  StreamDecoder s(*tok_);
  s.push(0xC3);
  StreamDecoder fork = s;
  EXPECT_EQ(s.push(0xA9), "\xC3\xA9");
  EXPECT_EQ(fork.push('x'), std::string(kReplacement) + "x");
  EXPECT_EQ(s.text(), "\xC3\xA9");
}

TEST_F(Streaming, SkipsSpecialTokensWhenAsked) {
  StreamDecoder s(*tok_, /*skip_special=*/true);
  EXPECT_EQ(s.push(256), "");
  EXPECT_EQ(s.push('h'), "h");
  StreamDecoder keep(*tok_);
  EXPECT_EQ(keep.push(256), "<|im_start|>");
}

TEST_F(Streaming, DecodeReplacesMaximalInvalidSubparts) {
  // Rust: from_utf8_lossy(b"Hello \xF0\x90\x80World") == "Hello \u{FFFD}World".
  EXPECT_EQ(lossy_utf8("Hello \xF0\x90\x80World"), std::string("Hello ") + kReplacement + "World");
  // E0 80: E0 needs A0..BF next, so each byte is its own invalid subpart.
  EXPECT_EQ(lossy_utf8("\xE0\x80"), std::string(kReplacement) + kReplacement);
  EXPECT_EQ(tok_->decode({0xED, 0xA0, 0x80}),
            std::string(kReplacement) + kReplacement + kReplacement);
}

TEST_F(Streaming, EncodeOfInvalidUtf8SeesReplacementCharacters) {
  EXPECT_EQ(tok_->encode("a\xFF"), (std::vector<int32_t>{'a', 0xEF, 0xBF, 0xBD}));
}

} // namespace
} // namespace treerpo::tokenizer
