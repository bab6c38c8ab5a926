#include <gtest/gtest.h>

#include <spdlog/spdlog.h>

#include "treerpo/util/progress.h"

TEST(Progress, FormatsDurationsForHumans) {
  EXPECT_EQ(treerpo::Progress::format_duration(5), "5s");
  EXPECT_EQ(treerpo::Progress::format_duration(65), "1m05s");
  EXPECT_EQ(treerpo::Progress::format_duration(3 * 3600 + 2 * 60 + 10), "3h02m");
  EXPECT_EQ(treerpo::Progress::format_duration(-1), "?");
}

TEST(Progress, CountsWhatWasAdvanced) {
  treerpo::Progress p("test", 10, "it", 1000.0);
  p.advance(3);
  p.advance(4);
  EXPECT_EQ(p.done(), 7);
}

TEST(Progress, QuietLoggingSilencesTheLine) {
  const auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::warn);
  testing::internal::CaptureStderr();
  {
    treerpo::Progress p("quiet", 2, "it", 0.0);
    p.advance(2);
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  spdlog::set_level(spdlog::level::info);
  testing::internal::CaptureStderr();
  {
    treerpo::Progress p("loud", 2, "it", 0.0);
    p.advance(2);
  }
  EXPECT_NE(testing::internal::GetCapturedStderr().find("loud 2/2 it"), std::string::npos);
  spdlog::set_level(level);
}
