// metrics.jsonl: one flushed JSON object per step, trimmed on resume to the replayed steps.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "treerpo/train/metrics.h"
#include "treerpo/util/error.h"

namespace treerpo::train {
namespace {

namespace fs = std::filesystem;

class Metrics : public testing::Test {
protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("treerpo-metrics-" + std::to_string(getpid()) + "-" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path jsonl() const { return dir_ / "metrics.jsonl"; }

  std::vector<std::string> lines() const {
    std::ifstream in(jsonl());
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  std::vector<int64_t> steps() const {
    std::vector<int64_t> out;
    for (const auto& line : lines()) out.push_back(nlohmann::json::parse(line)["step"]);
    return out;
  }

  void write_steps(int64_t resume_step, int64_t first, int64_t last) {
    MetricsWriter writer(dir_.string(), false, resume_step);
    for (int64_t step = first; step <= last; ++step)
      writer.write(step, {{"loss", static_cast<double>(step)}});
  }

  fs::path dir_;
};

TEST_F(Metrics, EachWriteIsOneLineWithStepTimeThenValuesInOrder) {
  const double before =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  MetricsWriter writer(dir_.string(), false);
  EXPECT_EQ(writer.jsonl_path(), jsonl().string());
  writer.write(7, {{"reward/mean", 0.25}, {"loss", -1.5}, {"tree/nodes", 12}});
  // Flushed per line: readable while the writer is still open.
  const auto written = lines();
  ASSERT_EQ(written.size(), 1u);
  const auto record = nlohmann::ordered_json::parse(written[0]);
  std::vector<std::string> keys;
  for (const auto& item : record.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"step", "time", "reward/mean", "loss", "tree/nodes"}));
  EXPECT_EQ(record["step"], 7);
  EXPECT_TRUE(record["step"].is_number_integer());
  EXPECT_GE(record["time"].get<double>(), std::floor(before));
  EXPECT_LT(record["time"].get<double>(), before + 60);
  EXPECT_EQ(record["reward/mean"], 0.25);
  EXPECT_EQ(record["loss"], -1.5);
  EXPECT_EQ(record["tree/nodes"], 12.0);
}

TEST_F(Metrics, CreatesTheRunDirectoryAndNoEventFileWithoutTensorboard) {
  MetricsWriter writer((dir_ / "nested" / "run").string(), false);
  writer.write(0, {{"loss", 1}});
  EXPECT_TRUE(fs::exists(dir_ / "nested" / "run" / "metrics.jsonl"));
  EXPECT_EQ(writer.events_path(), "");
  for (const auto& entry : fs::directory_iterator(dir_ / "nested" / "run"))
    EXPECT_EQ(entry.path().filename(), "metrics.jsonl");
}

TEST_F(Metrics, NonFiniteValuesAreWrittenAsNullSoTheLineStaysJson) {
  MetricsWriter writer(dir_.string(), true);
  writer.write(1, {{"loss", std::nan("")}, {"grad/norm", INFINITY}});
  const auto record = nlohmann::json::parse(lines().at(0));
  EXPECT_TRUE(record["loss"].is_null());
  EXPECT_TRUE(record["grad/norm"].is_null());
}

TEST_F(Metrics, ResumeKeepsStepsUpToTheResumeStepAndAppendsTheReplay) {
  write_steps(-1, 1, 5);
  write_steps(3, 4, 6);
  EXPECT_EQ(steps(), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(nlohmann::json::parse(lines()[3])["loss"], 4.0);
}

TEST_F(Metrics, ResumeDropsATornLastLine) {
  write_steps(-1, 1, 3);
  {
    std::ofstream torn(jsonl(), std::ios::app | std::ios::binary);
    torn << R"({"step":4,"time":17000)"; // killed mid-line: no newline
  }
  write_steps(10, 4, 4);
  EXPECT_EQ(steps(), (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST_F(Metrics, AFreshStartInAnOldRunDirectoryStartsOver) {
  write_steps(-1, 0, 4);
  write_steps(-1, 0, 1);
  EXPECT_EQ(steps(), (std::vector<int64_t>{0, 1}));
}

TEST_F(Metrics, ResumePastTheLastStepKeepsTheFileAsItWas) {
  write_steps(-1, 1, 2);
  const auto before = lines();
  write_steps(100, 3, 3);
  auto after = lines();
  ASSERT_EQ(after.size(), 3u);
  after.pop_back();
  EXPECT_EQ(after, before);
}

TEST_F(Metrics, ABrokenLineInsideTheFileIsBadInputNamingTheLine) {
  fs::create_directories(dir_);
  {
    std::ofstream out(jsonl());
    out << R"({"step":1,"loss":1})"
        << "\n"
        << "not json\n"
        << R"({"step":3})"
        << "\n";
  }
  try {
    MetricsWriter writer(dir_.string(), false, 5);
    FAIL() << "accepted a broken metrics file";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_EQ(e.where(), jsonl().string() + ":2");
  }
  EXPECT_EQ(lines().size(), 3u) << "the file is left for the user to fix";
}

TEST_F(Metrics, ReservedOrRepeatedKeysAreRejected) {
  MetricsWriter writer(dir_.string(), false);
  EXPECT_THROW(writer.write(1, {{"step", 1}}), Error);
  EXPECT_THROW(writer.write(1, {{"time", 1}}), Error);
  EXPECT_THROW(writer.write(1, {{"loss", 1}, {"loss", 2}}), Error);
  EXPECT_TRUE(lines().empty());
}

} // namespace
} // namespace treerpo::train
