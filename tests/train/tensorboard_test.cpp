// TensorBoard event files, checked with a decoder written here from the TFRecord and protobuf
// wire-format specs (bitwise CRC, no tables) rather than with the writer's own helpers.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "../../src/train/tensorboard.h"
#include "treerpo/train/metrics.h"

namespace treerpo::train {
namespace {

namespace fs = std::filesystem;

// CRC-32C one bit at a time, straight from the definition (reflected polynomial 0x82F63B78).
uint32_t bitwise_crc32c(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : bytes) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1u) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

uint32_t mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

uint64_t read_le(const std::string& bytes, size_t at, int width) {
  uint64_t value = 0;
  for (int i = 0; i < width; ++i)
    value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes.at(at + i))) << (8 * i);
  return value;
}

std::string le(uint64_t value, int width) {
  std::string out;
  for (int i = 0; i < width; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
  return out;
}

// Splits a TFRecord stream, failing the test on a bad length or data CRC.
std::vector<std::string> read_records(const std::string& file) {
  std::vector<std::string> records;
  size_t at = 0;
  while (at < file.size()) {
    const std::string length_bytes = file.substr(at, 8);
    const uint64_t length = read_le(file, at, 8);
    EXPECT_EQ(read_le(file, at + 8, 4), mask(bitwise_crc32c(length_bytes))) << "length crc";
    const std::string data = file.substr(at + 12, length);
    EXPECT_EQ(read_le(file, at + 12 + length, 4), mask(bitwise_crc32c(data))) << "data crc";
    records.push_back(data);
    at += 12 + length + 4;
  }
  EXPECT_EQ(at, file.size()) << "trailing bytes";
  return records;
}

struct Field {
  uint32_t number;
  uint32_t wire_type;
  uint64_t integer;  // varint, fixed64 or fixed32 bits
  std::string bytes; // length-delimited payload
};

uint64_t read_varint(const std::string& bytes, size_t& at) {
  uint64_t value = 0;
  for (int shift = 0;; shift += 7) {
    const auto byte = static_cast<unsigned char>(bytes.at(at++));
    value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return value;
  }
}

std::vector<Field> read_fields(const std::string& message) {
  std::vector<Field> fields;
  size_t at = 0;
  while (at < message.size()) {
    const uint64_t key = read_varint(message, at);
    Field field{static_cast<uint32_t>(key >> 3), static_cast<uint32_t>(key & 7), 0, ""};
    switch (field.wire_type) {
    case 0:
      field.integer = read_varint(message, at);
      break;
    case 1:
      field.integer = read_le(message, at, 8);
      at += 8;
      break;
    case 5:
      field.integer = read_le(message, at, 4);
      at += 4;
      break;
    case 2: {
      const uint64_t length = read_varint(message, at);
      field.bytes = message.substr(at, length);
      at += length;
      break;
    }
    default:
      ADD_FAILURE() << "unexpected wire type " << field.wire_type;
      return fields;
    }
    fields.push_back(field);
  }
  return fields;
}

struct DecodedEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  bool session_start = false;
  std::vector<std::pair<std::string, float>> scalars;
};

// Event: wall_time 1 (double), step 2 (int64), file_version 3 (string), summary 5, session_log 7;
// Summary: value 1 (repeated); Value: tag 1 (string), simple_value 2 (float);
// SessionLog: status 1 (enum; START = 1).
DecodedEvent decode_event(const std::string& message) {
  DecodedEvent event;
  for (const Field& f : read_fields(message)) {
    if (f.number == 1 && f.wire_type == 1)
      std::memcpy(&event.wall_time, &f.integer, 8);
    else if (f.number == 2 && f.wire_type == 0)
      event.step = static_cast<int64_t>(f.integer);
    else if (f.number == 3 && f.wire_type == 2)
      event.file_version = f.bytes;
    else if (f.number == 7 && f.wire_type == 2) {
      const auto status = read_fields(f.bytes);
      event.session_start = status.size() == 1 && status[0].number == 1 &&
                            status[0].wire_type == 0 && status[0].integer == 1;
    } else if (f.number == 5 && f.wire_type == 2) {
      for (const Field& value : read_fields(f.bytes)) {
        EXPECT_EQ(value.number, 1u);
        std::pair<std::string, float> scalar;
        for (const Field& part : read_fields(value.bytes)) {
          if (part.number == 1 && part.wire_type == 2)
            scalar.first = part.bytes;
          else if (part.number == 2 && part.wire_type == 5) {
            const auto bits = static_cast<uint32_t>(part.integer);
            std::memcpy(&scalar.second, &bits, 4);
          } else
            ADD_FAILURE() << "unexpected Value field " << part.number;
        }
        event.scalars.push_back(scalar);
      }
    } else
      ADD_FAILURE() << "unexpected Event field " << f.number;
  }
  return event;
}

TEST(Crc32c, MatchesPublishedVectors) {
  const std::string digits = "123456789";
  EXPECT_EQ(crc32c(digits.data(), digits.size()), 0xE3069283u);
  // RFC 3720 B.4: 32 bytes of 0x00, of 0xFF, and 0x00..0x1F ascending.
  std::string zeros(32, '\0'), ones(32, '\xFF'), ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(crc32c(ascending.data(), ascending.size()), 0x46DD794Eu);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  // The test's own bitwise CRC agrees on the same vectors, so the decoder below can be trusted.
  EXPECT_EQ(bitwise_crc32c(digits), 0xE3069283u);
  EXPECT_EQ(bitwise_crc32c(zeros), 0x8A9136AAu);
}

TEST(Crc32c, MaskRotatesRightBy15AndAddsTheConstant) {
  // crc32c("123456789") = 0xE3069283: rotr 15 = 0x2507C60D; + 0xA282EAD8 = 0xC78AB0E5.
  const std::string digits = "123456789";
  EXPECT_EQ(masked_crc32c(digits.data(), digits.size()), 0xC78AB0E5u);
}

TEST(TfRecord, ScalarRecordIsByteExact) {
  // Event{wall_time 1.5, step 3, summary{value{tag "a", simple_value 2.0f}}}, encoded by hand:
  //   09 <1.5 = 0x3FF8000000000000 LE>     field 1, fixed64
  //   10 03                                 field 2, varint 3
  //   2A 0A                                 field 5, 10 bytes: Summary
  //     0A 08                               Summary.value, 8 bytes: Value
  //       0A 01 61                          tag "a"
  //       15 <2.0f = 0x40000000 LE>         simple_value, fixed32
  const std::string event = std::string("\x09", 1) + le(0x3FF8000000000000ull, 8) +
                            std::string("\x10\x03\x2A\x0A\x0A\x08\x0A\x01"
                                        "a\x15",
                                        10) +
                            le(0x40000000u, 4);
  ASSERT_EQ(event.size(), 23u);
  EXPECT_EQ(scalars_event(1.5, 3, {{"a", 2.0f}}), event);
  const std::string length = le(23, 8);
  const std::string expected =
      length + le(mask(bitwise_crc32c(length)), 4) + event + le(mask(bitwise_crc32c(event)), 4);
  EXPECT_EQ(tfrecord(event), expected);
}

TEST(TfRecord, SessionStartEventIsByteExact) {
  // Event{wall_time 2.0, step 4, session_log{status START}}:
  //   09 <2.0 = 0x4000000000000000 LE>  10 04  3A 02 (field 7, 2 bytes)  08 01 (status = 1)
  const std::string event = std::string("\x09", 1) + le(0x4000000000000000ull, 8) +
                            std::string("\x10\x04\x3A\x02\x08\x01", 6);
  EXPECT_EQ(session_start_event(2.0, 4), event);
}

TEST(TfRecord, FileVersionEventIsBrainEvent2) {
  const DecodedEvent event = decode_event(file_version_event(123.25));
  EXPECT_EQ(event.wall_time, 123.25);
  EXPECT_EQ(event.file_version, "brain.Event:2");
  EXPECT_TRUE(event.scalars.empty());
}

TEST(TfRecord, NegativeStepSurvivesAsTwosComplementVarint) {
  const std::string event = scalars_event(0.0, -1, {});
  EXPECT_EQ(decode_event(event).step, -1);
  EXPECT_EQ(event.size(), 9u + 1 + 10 + 2); // wall_time, step key + 10-byte varint, empty summary
}

class EventFile : public testing::Test {
protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("treerpo-tensorboard-" + std::to_string(getpid()) + "-" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::vector<DecodedEvent> decode_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    std::vector<DecodedEvent> events;
    for (const auto& record : read_records(bytes.str())) events.push_back(decode_event(record));
    return events;
  }

  fs::path dir_;
};

TEST_F(EventFile, MetricsWriterEventsDecodeToTheWrittenScalars) {
  std::string events_path;
  {
    MetricsWriter writer(dir_.string(), true);
    writer.write(1, {{"loss", 0.5}, {"reward/mean", 0.25}});
    writer.write(2, {{"loss", 0.375}, {"reward/mean", 1.0 / 3.0}, {"tree/nodes", 17}});
    events_path = writer.events_path();
  }
  const std::string name = fs::path(events_path).filename().string();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  EXPECT_NE(name.find(std::string(".") + host + ".treerpo"), std::string::npos) << name;
  EXPECT_EQ(fs::path(events_path).parent_path(), dir_);

  const auto events = decode_file(events_path);
  ASSERT_EQ(events.size(), 4u);
  const DecodedEvent& first = events[0];
  EXPECT_EQ(first.file_version, "brain.Event:2");
  EXPECT_GT(first.wall_time, 1.6e9); // a unix time, not a duration
  // The file name carries the integer part of the first event's wall time.
  EXPECT_NE(name.find("." + std::to_string(static_cast<int64_t>(first.wall_time)) + "."),
            std::string::npos);

  // A fresh run starts its session at step 0.
  EXPECT_TRUE(events[1].session_start);
  EXPECT_EQ(events[1].step, 0);
  const DecodedEvent &step1 = events[2], &step2 = events[3];
  EXPECT_EQ(step1.step, 1);
  EXPECT_EQ(step2.step, 2);
  EXPECT_GE(step1.wall_time, first.wall_time);
  EXPECT_GE(step2.wall_time, step1.wall_time);
  using Scalars = std::vector<std::pair<std::string, float>>;
  EXPECT_EQ(step1.scalars, (Scalars{{"loss", 0.5f}, {"reward/mean", 0.25f}}));
  EXPECT_EQ(step2.scalars,
            (Scalars{{"loss", 0.375f}, {"reward/mean", 1.0f / 3.0f}, {"tree/nodes", 17.0f}}));
}

TEST_F(EventFile, AResumedRunsFileStartsItsSessionAfterTheResumeStep) {
  std::string first_path, resumed_path;
  {
    MetricsWriter writer(dir_.string(), true);
    writer.write(1, {{"loss", 1}});
    first_path = writer.events_path();
  }
  {
    MetricsWriter writer(dir_.string(), true, 3);
    writer.write(4, {{"loss", 0.5}});
    resumed_path = writer.events_path();
  }
  auto resumed = decode_file(resumed_path);
  // Both writers may start within one second and share the file name; the resumed run's events
  // then follow the first run's three in the same file, which TensorBoard reads the same way.
  if (resumed_path == first_path) {
    ASSERT_EQ(resumed.size(), 6u);
    resumed.erase(resumed.begin(), resumed.begin() + 3);
  }
  ASSERT_EQ(resumed.size(), 3u);
  EXPECT_EQ(resumed[0].file_version, "brain.Event:2");
  EXPECT_TRUE(resumed[1].session_start);
  EXPECT_EQ(resumed[1].step, 4); // TensorBoard drops earlier events from step 4 on
  EXPECT_EQ(resumed[2].step, 4);
  EXPECT_EQ(resumed[2].scalars.at(0).second, 0.5f);
}

} // namespace
} // namespace treerpo::train
