// SHA256SUMS of a checkpoint folder: written in sha256sum's format, and any damage since (a flipped
// byte, a truncated or missing file, a truncated SHA256SUMS) is reported; plain folders pass.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "../common/temp_dir.h"
#include "treerpo/util/checksums.h"
#include "treerpo/util/error.h"

namespace {

using treerpo::testing::TempDir;

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// FIPS 180-2 test vectors: SHA-256("abc") and SHA-256("").
const std::string kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(Checksums, ListsEveryFileInSha256sumFormat) {
  TempDir dir;
  write(dir / "b.txt", "abc");
  write(dir / "a.txt", "");
  std::filesystem::create_directories(dir / "sub"); // not a checkpoint file
  treerpo::write_checksums(dir.str());
  EXPECT_EQ(read(dir / "SHA256SUMS"), kEmpty + "  a.txt\n" + kAbc + "  b.txt\n");
  EXPECT_EQ(treerpo::checksum_problem(dir.str()), std::nullopt);
  // coreutils agrees, so users can check a checkpoint by hand.
  const std::string cmd = "cd " + dir.str() + " && sha256sum --quiet -c SHA256SUMS";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST(Checksums, FolderWithoutChecksumsIsNotChecked) {
  TempDir dir;
  write(dir / "model.safetensors", "anything");
  EXPECT_EQ(treerpo::checksum_problem(dir.str()), std::nullopt);
}

TEST(Checksums, FlippedByteIsReportedByFileName) {
  TempDir dir;
  write(dir / "model.safetensors", "abcdefgh");
  treerpo::write_checksums(dir.str());
  write(dir / "model.safetensors", "abcdefgH");
  EXPECT_EQ(treerpo::checksum_problem(dir.str()),
            "model.safetensors: SHA-256 differs from SHA256SUMS (truncated or altered)");
  EXPECT_THROW(treerpo::require_intact(dir.str()), treerpo::Error);
}

TEST(Checksums, TruncatedMissingOrUnlistedFilesAreReported) {
  TempDir dir;
  write(dir / "a", "12345");
  write(dir / "b", "67890");
  treerpo::write_checksums(dir.str());
  write(dir / "a", "1234");
  EXPECT_EQ(treerpo::checksum_problem(dir.str()),
            "a: SHA-256 differs from SHA256SUMS (truncated or altered)");
  write(dir / "a", "12345");
  std::filesystem::remove(dir / "b");
  EXPECT_EQ(treerpo::checksum_problem(dir.str()), "b is missing");
  write(dir / "b", "67890");
  EXPECT_EQ(treerpo::checksum_problem(dir.str()), std::nullopt);
  // SHA256SUMS cut after its first line: b is no longer covered, which is itself damage.
  const std::string sums = read(dir / "SHA256SUMS");
  write(dir / "SHA256SUMS", sums.substr(0, sums.find('\n') + 1));
  EXPECT_EQ(treerpo::checksum_problem(dir.str()), "b is not listed in SHA256SUMS");
  // ... and cut mid-line: no final newline.
  write(dir / "SHA256SUMS", sums.substr(0, 30));
  EXPECT_EQ(treerpo::checksum_problem(dir.str()),
            "SHA256SUMS: last line has no newline (truncated?)");
}

TEST(Checksums, ParserRefusesMalformedLines) {
  const std::string ok = kAbc + "  b.txt\n";
  EXPECT_EQ(treerpo::parse_checksums(ok, "S").size(), 1u);
  EXPECT_TRUE(treerpo::parse_checksums("", "S").empty());
  for (const std::string& bad :
       {kAbc + "  b.txt", kAbc + " b.txt\n", kAbc.substr(1) + "  b.txt\n", kAbc + "  ../x\n",
        kAbc + "  sub/x\n", kAbc + "  \n", ok + ok, "ZZ" + kAbc.substr(2) + "  b\n"}) {
    EXPECT_THROW(treerpo::parse_checksums(bad, "S"), treerpo::Error) << bad;
  }
}

} // namespace
