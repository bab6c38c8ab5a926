// The byte-level BPE path on tiny written tokenizers, with expected ids worked out by hand
// (ids 0..255 are bytes, merges get 256, 257, ... in order, then the special tokens).
#include <gtest/gtest.h>

#include "tiny_tokenizer.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/util/error.h"

namespace treerpo::tokenizer {
namespace {

using Ids = std::vector<int32_t>;

TEST(ByteLevelWriter, WrittenTokenizerLoadsAndMergesWords) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {{"t", "h"}, {"th", "e"}, {" ", "the"}}, {});
  const auto tok = Tokenizer::load(dir.string());
  // "the" -> t h e -> th e -> the (257); " the" -> ' ' the -> " the" (258).
  EXPECT_EQ(tok->encode("the the"), (Ids{257, 258}));
  EXPECT_EQ(tok->encode("x"), (Ids{'x'}));
  EXPECT_EQ(tok->decode({257, 258, '!'}), "the the!");
}

TEST(ByteLevelWriter, LowerRankMergeWinsOverLeftmostPair) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {{"b", "c"}, {"a", "b"}}, {});
  const auto tok = Tokenizer::load(dir.string());
  EXPECT_EQ(tok->encode("abc"), (Ids{'a', 256})); // bc (rank 0) before ab (rank 1)
  EXPECT_EQ(tok->encode("abab"), (Ids{257, 257}));
}

TEST(ByteLevelWriter, EqualRankMergesGoLeftToRight) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {{"a", "a"}}, {});
  const auto tok = Tokenizer::load(dir.string());
  EXPECT_EQ(tok->encode("aaa"), (Ids{256, 'a'}));
}

TEST(ByteLevelWriter, SpecialTokensGetIdsAfterMergesAndNameEosAndPad) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {{"h", "i"}}, {"<|im_start|>"});
  const auto tok = Tokenizer::load(dir.string());
  EXPECT_EQ(tok->token_id("<|im_start|>"), 257);
  EXPECT_EQ(tok->token_id("<|endoftext|>"), 258);
  EXPECT_EQ(tok->token_id("<|im_end|>"), 259);
  EXPECT_EQ(tok->vocab_size(), 260);
  EXPECT_EQ(tok->eos_ids().front(), 259);
  EXPECT_EQ(tok->pad_id(), 258);
  EXPECT_EQ(tok->encode("<|im_start|>hi<|im_end|>"), (Ids{257, 256, 259}));
  EXPECT_TRUE(tok->is_special(257));
  EXPECT_FALSE(tok->is_special(256));
}

TEST(ByteLevelWriter, MergesAsStringsEncodeLikeMergesAsPairs) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {{" ", "t"}, {" t", "o"}}, {});
  auto j = read_json_file(dir / "tokenizer.json");
  nlohmann::json strings = nlohmann::json::array();
  for (const auto& m : j["model"]["merges"])
    strings.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  j["model"]["merges"] = strings;
  EXPECT_EQ(strings[0], "Ġ t"); // the space byte is written as U+0120 in byte-level files
  write_text_file(dir / "tokenizer.json", j.dump());
  const auto tok = Tokenizer::load(dir.string());
  EXPECT_EQ(tok->encode("go to"), (Ids{'g', 'o', 257}));
}

TEST(ByteLevelWriter, MergeOfUnknownPieceIsRejected) {
  const auto dir = scratch_dir();
  EXPECT_THROW(write_byte_level_tokenizer(dir.string(), {{"ab", "c"}}, {}), Error);
}

TEST(ByteLevelWriter, PrefixSpaceMakesFirstWordLikeLaterWords) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {{" ", "a"}}, {});
  auto j = read_json_file(dir / "tokenizer.json");
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  write_text_file(dir / "tokenizer.json", j.dump());
  const auto tok = Tokenizer::load(dir.string());
  EXPECT_EQ(tok->encode("a a"), (Ids{256, 256}));
}

TEST(ByteLevelWriter, StripFlagsAbsorbSurroundingWhitespace) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {}, {});
  auto j = read_json_file(dir / "tokenizer.json");
  j["added_tokens"].push_back({{"id", 300},
                               {"content", "<x>"},
                               {"lstrip", true},
                               {"rstrip", true},
                               {"normalized", false},
                               {"special", true},
                               {"single_word", false}});
  write_text_file(dir / "tokenizer.json", j.dump());
  const auto tok = Tokenizer::load(dir.string());
  EXPECT_EQ(tok->encode("a  <x>\n b"), (Ids{'a', 300, 'b'}));
  EXPECT_EQ(tok->vocab_size(), 301);
}

TEST(ByteLevelWriter, NormalizedAddedTokenMatchesAfterNfc) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {}, {});
  auto j = read_json_file(dir / "tokenizer.json");
  j["added_tokens"].push_back({{"id", 300},
                               {"content", "\xC3\xA9"},
                               {"lstrip", false},
                               {"rstrip", false},
                               {"normalized", true},
                               {"special", false},
                               {"single_word", false}});
  write_text_file(dir / "tokenizer.json", j.dump());
  const auto tok = Tokenizer::load(dir.string());
  EXPECT_EQ(tok->encode("e\xCC\x81!"), (Ids{300, '!'})); // e + U+0301 composes to U+00E9
}

TEST(ByteLevelWriter, LongestAddedTokenWins) {
  const auto dir = scratch_dir();
  write_byte_level_tokenizer(dir.string(), {}, {"<a>", "<a><b>"});
  const auto tok = Tokenizer::load(dir.string());
  EXPECT_EQ(tok->encode("<a><b><a>"), (Ids{257, 256}));
}

} // namespace
} // namespace treerpo::tokenizer
