#include "core/window.h"

#include <cstdint>
#include <ctime>
#include <limits>

#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

namespace shardctl::core {
namespace {

using test::kMax;
using test::kMin;

struct WindowStartCase {
  int64_t now;
  int64_t window;
  int64_t expected_start;
};

TEST(WindowStartTest, AlignsToMultiplesOfTheWindowSinceTheEpoch) {
  const WindowStartCase cases[] = {
      // Exactly at a boundary: the window that starts there.
      {0, 60, 0},
      {120, 60, 120},
      {3600, 3600, 3600},
      {604800, 604800, 604800},
      // One second before a boundary: the window before it.
      {119, 60, 60},
      {59, 60, 0},
      {3599, 3600, 0},
      {604799, 604800, 0},
      // Inside a window.
      {121, 60, 120},
      {100, 60, 60},
      {1700000000, 3600, 1699999200},
      // One-second windows start at every second.
      {0, 1, 0},
      {12345, 1, 12345},
      {-12345, 1, -12345},
      // Near the top of int64.
      {kMax, 1, kMax},
      {kMax, 60, 9223372036854775800},
      {kMax, 604800, 9223372036854460800},
  };
  for (const WindowStartCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "now " << c.now << ", window " << c.window);
    EXPECT_EQ(WindowStart(c.now, c.window), c.expected_start);
  }
}

TEST(WindowStartTest, NegativeTimesAlignDownwardsNotTowardsZero) {
  const WindowStartCase cases[] = {
      {-1, 60, -60},                       // one second before the epoch
      {-59, 60, -60},     {-60, 60, -60},  // exactly at a boundary
      {-61, 60, -120},                     // one second before that boundary
      {-120, 60, -120},   {-3601, 3600, -7200}, {-1, 604800, -604800},
      {kMin, 1, kMin},    {kMin, 2, kMin},  // kMin is a multiple of every power of two
      {kMin, 1024, kMin},
  };
  for (const WindowStartCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "now " << c.now << ", window " << c.window);
    EXPECT_EQ(WindowStart(c.now, c.window), c.expected_start);
  }
}

TEST(WindowStartTest, EveryTimeIsInsideItsWindow) {
  for (int64_t window : {1, 7, 60, 3600}) {
    for (int64_t now = -2 * window - 3; now <= 2 * window + 3; ++now) {
      int64_t start = WindowStart(now, window);
      ASSERT_LE(start, now) << "now " << now << ", window " << window;
      ASSERT_LT(now, start + window) << "now " << now << ", window " << window;
      ASSERT_EQ(start % window, 0) << "now " << now << ", window " << window;
    }
  }
}

TEST(ValidateWindowTest, AcceptsOneSecondToAWeek) {
  EXPECT_EQ(kMaxWindowSeconds, 604800);
  for (int64_t seconds : {int64_t{1}, int64_t{60}, int64_t{3600}, int64_t{604800}}) {
    Status valid = ValidateWindow(seconds);
    EXPECT_TRUE(valid.ok()) << seconds << ": " << valid.message();
  }
}

TEST(ValidateWindowTest, RefusesZeroNegativeAndLongerThanAWeek) {
  for (int64_t seconds : {int64_t{0}, int64_t{-1}, int64_t{604801}, kMin, kMax}) {
    Status valid = ValidateWindow(seconds);
    ASSERT_FALSE(valid.ok()) << seconds;
    EXPECT_EQ(valid.code(), Code::kInvalidArgument) << seconds;
    EXPECT_NE(valid.message().find("1 to 604800 seconds"), std::string::npos) << valid.message();
  }
}

TEST(SystemNowSecondsTest, IsTheSystemClockInSeconds) {
  const int64_t before = static_cast<int64_t>(std::time(nullptr));
  const int64_t now = SystemNowSeconds();
  const int64_t after = static_cast<int64_t>(std::time(nullptr));
  // time() may read a coarser clock, so allow it a second either way.
  EXPECT_LE(before - 1, now);
  EXPECT_LE(now, after + 1);
  EXPECT_GT(now, 1600000000);  // after September 2020
}

}  // namespace
}  // namespace shardctl::core
