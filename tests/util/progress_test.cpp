#include <gtest/gtest.h>

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
