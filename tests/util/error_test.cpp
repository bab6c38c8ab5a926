#include <gtest/gtest.h>

#include "treerpo/util/error.h"

TEST(Error, IsOneLineWithWhereWhatAndHint) {
  treerpo::Error e = treerpo::bad_input("bad\nvalue", "config.yaml:3", "fix it");
  EXPECT_STREQ(e.what(), "config.yaml:3: bad value; fix it");
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_EQ(treerpo::runtime_failure("disk full").exit_code(), 1);
  EXPECT_STREQ(treerpo::runtime_failure("disk full").what(), "disk full");
}
