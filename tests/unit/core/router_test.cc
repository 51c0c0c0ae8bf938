#include "core/router.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

namespace shardctl::core {
namespace {

using test::kMax;
using test::kMin;
constexpr int kIntMax = std::numeric_limits<int>::max();

struct RouteCase {
  int64_t value;
  int shard_count;
  int expected_shard;
};

TEST(RouterTest, ShardIsTheMathematicalModulo) {
  const RouteCase cases[] = {
      {0, 3, 0},
      {1, 3, 1},
      {2, 3, 2},
      {3, 3, 0},
      {5, 3, 2},
      {-1, 3, 2},
      {-2, 3, 1},
      {-3, 3, 0},
      {-4, 3, 2},
      {-7, 7, 0},
      {-8, 7, 6},
      {kMax, 3, 1},
      {kMin, 3, 1},
      {kMax, 2, 1},
      {kMin, 2, 0},
      {kMax, 7, 0},
      {kMin, 7, 6},
      {-1, kIntMax, kIntMax - 1},
      {kMin, kIntMax, 2147483645},
  };
  for (const RouteCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "value " << c.value << ", " << c.shard_count << " shards");
    EXPECT_EQ(ShardFor(c.value, c.shard_count), c.expected_shard);
  }
}

TEST(RouterTest, NegativeValueWrapsToLastShard) {
  EXPECT_EQ(ShardFor(-1, 3), 2);
  EXPECT_EQ(ShardFor(-1, 5), 4);
}

TEST(RouterTest, SingleShardOwnsEveryValue) {
  for (int64_t value : {kMin, kMin + 1, int64_t{-5}, int64_t{-1}, int64_t{0}, int64_t{1},
                        int64_t{5}, kMax - 1, kMax}) {
    SCOPED_TRACE(testing::Message() << "value " << value);
    EXPECT_EQ(ShardFor(value, 1), 0);
  }
}

TEST(RouterTest, ShardIsAlwaysWithinRange) {
  for (int shard_count = 1; shard_count <= 16; ++shard_count) {
    for (int64_t value = -100; value <= 100; ++value) {
      int shard = ShardFor(value, shard_count);
      ASSERT_GE(shard, 0) << "value " << value << ", " << shard_count << " shards";
      ASSERT_LT(shard, shard_count) << "value " << value << ", " << shard_count << " shards";
      // Consecutive values go to consecutive shards, across zero too.
      ASSERT_EQ(ShardFor(value + 1, shard_count), (shard + 1) % shard_count)
          << "value " << value << ", " << shard_count << " shards";
    }
  }
}

// FNV-1a 64 of "", "a" and "foobar" is 0xcbf29ce484222325, 0xaf63dc4c8601ec8c
// and 0x85944171f73967e8 (the published test vectors): the hash is stable.
TEST(RouterTest, KeyRoutesByItsFnv1aHashModN) {
  EXPECT_EQ(ShardForKey("", 1000), 37);
  EXPECT_EQ(ShardForKey("a", 1000), 996);
  EXPECT_EQ(ShardForKey("foobar", 1000), 968);
  EXPECT_EQ(ShardForKey("foobar", kIntMax), 39971534);
  EXPECT_EQ(ShardForKey("foobar", 1), 0);
}

TEST(RouterTest, KeysSpreadOverEveryShard) {
  std::vector<int> hits(3);
  for (int i = 0; i < 3000; ++i) ++hits[ShardForKey("key-" + std::to_string(i), 3)];
  for (int shard = 0; shard < 3; ++shard) EXPECT_GT(hits[shard], 800) << "shard " << shard;
}

TEST(RouterTest, KeyShardIsAlwaysInRange) {
  for (int shards : {1, 2, 3, 8, kIntMax}) {
    for (const char* key : {"", "a", "retry-me", "0123456789abcdef0123456789abcdef"}) {
      int shard = ShardForKey(key, shards);
      EXPECT_GE(shard, 0);
      EXPECT_LT(shard, shards);
    }
  }
}

TEST(RouterTest, ParsesEveryRoutingByItsName) {
  for (Routing routing : {Routing::kValue, Routing::kRoundRobin, Routing::kRandom}) {
    Result<Routing> parsed = ParseRouting(RoutingName(routing));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, routing);
  }
  Result<Routing> unknown = ParseRouting("hash");
  EXPECT_EQ(unknown.status().code(), Code::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("value, round-robin or random"), std::string::npos);
}

}  // namespace
}  // namespace shardctl::core
