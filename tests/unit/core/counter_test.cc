#include "core/counter.h"

#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

namespace shardctl::core {
namespace {

using test::kMax;
using test::kMin;

struct SumCase {
  int64_t a;
  int64_t b;
  int64_t expected;
};

TEST(CheckedAddTest, ReturnsTheSumWhenItFitsInInt64) {
  const SumCase cases[] = {
      {0, 0, 0},        {2, 3, 5},        {-5, 3, -2},         {-5, -3, -8},
      {kMax, 0, kMax},  {kMin, 0, kMin},  {kMax - 1, 1, kMax}, {kMin + 1, -1, kMin},
      {kMax, kMin, -1}, {kMin, kMax, -1}, {kMax, -kMax, 0},
  };
  for (const SumCase& c : cases) {
    SCOPED_TRACE(testing::Message() << c.a << " + " << c.b);
    Result<int64_t> sum = CheckedAdd(c.a, c.b);
    ASSERT_TRUE(sum.ok()) << sum.status().message();
    EXPECT_EQ(*sum, c.expected);
  }
}

TEST(CheckedAddTest, SumOutsideInt64IsOutOfRange) {
  const std::pair<int64_t, int64_t> cases[] = {
      {kMax, 1}, {1, kMax}, {kMax, kMax}, {kMin, -1}, {-1, kMin}, {kMin, kMin},
  };
  for (const auto& [a, b] : cases) {
    SCOPED_TRACE(testing::Message() << a << " + " << b);
    Result<int64_t> sum = CheckedAdd(a, b);
    ASSERT_FALSE(sum.ok()) << "gave " << *sum;
    EXPECT_EQ(sum.status().code(), Code::kOutOfRange);
    EXPECT_FALSE(sum.status().message().empty());
  }
}

}  // namespace
}  // namespace shardctl::core
