#include "core/shard.h"

#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

TEST(ShardTest, StartsAtZeroWithItsId) {
  Shard shard(3);
  EXPECT_EQ(shard.id(), 3);
  EXPECT_EQ(shard.Count(), 0);
}

TEST(ShardTest, IncrementReturnsItsIdAndTheNewCount) {
  Shard shard(2);
  Result<IncrementReply> first = shard.Increment(5);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, (IncrementReply{2, 5}));

  Result<IncrementReply> second = shard.Increment(1);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(*second, (IncrementReply{2, 6}));
  EXPECT_EQ(shard.Count(), 6);
}

TEST(ShardTest, TakesNegativeAndZeroValues) {
  Shard shard(0);
  ASSERT_TRUE(shard.Increment(-7).ok());
  ASSERT_TRUE(shard.Increment(0).ok());
  Result<IncrementReply> reply = shard.Increment(-1);
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->count, -8);
  EXPECT_EQ(shard.Count(), -8);
}

TEST(ShardTest, OverflowIsOutOfRangeAndLeavesTheCountUnchanged) {
  Shard shard(4);
  ASSERT_TRUE(shard.Increment(kMax).ok());
  Result<IncrementReply> refused = shard.Increment(1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kOutOfRange);
  EXPECT_EQ(shard.Count(), kMax);
}

TEST(ShardTest, UnderflowIsOutOfRangeAndLeavesTheCountUnchanged) {
  Shard shard(4);
  ASSERT_TRUE(shard.Increment(kMin).ok());
  Result<IncrementReply> refused = shard.Increment(-1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kOutOfRange);
  EXPECT_EQ(shard.Count(), kMin);
}

TEST(ShardTest, OverflowMessageNamesTheShard) {
  Shard shard(4);
  ASSERT_TRUE(shard.Increment(kMax).ok());
  Result<IncrementReply> refused = shard.Increment(kMax);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("shard 4"), std::string::npos)
      << refused.status().message();
}

TEST(ShardTest, ConcurrentIncrementsAreEachAppliedOnce) {
  constexpr int kThreads = 4;
  constexpr int kIncrementsPerThread = 10000;
  Shard shard(1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&shard] {
      for (int i = 0; i < kIncrementsPerThread; ++i) {
        Result<IncrementReply> reply = shard.Increment(2);
        EXPECT_TRUE(reply.ok());
        EXPECT_EQ(reply->shard_id, 1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(shard.Count(), int64_t{2} * kThreads * kIncrementsPerThread);
}

TEST(LocalShardClientTest, IncrementReachesTheShard) {
  Shard shard(1);
  LocalShardClient client(shard);
  Result<IncrementReply> reply = client.Increment(5);
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (IncrementReply{1, 5}));
  EXPECT_EQ(shard.Count(), 5);
}

TEST(LocalShardClientTest, CountReadsTheShard) {
  Shard shard(1);
  ASSERT_TRUE(shard.Increment(-9).ok());
  LocalShardClient client(shard);
  Result<int64_t> count = client.Count();
  ASSERT_TRUE(count.ok()) << count.status().message();
  EXPECT_EQ(*count, -9);
}

TEST(LocalShardClientTest, PassesTheShardsRefusalThrough) {
  Shard shard(2);
  LocalShardClient client(shard);
  ASSERT_TRUE(client.Increment(kMax).ok());
  Result<IncrementReply> refused = client.Increment(1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kOutOfRange);
  EXPECT_EQ(shard.Count(), kMax);
}

TEST(LocalShardClientTest, IsInProcess) {
  Shard shard(0);
  LocalShardClient client(shard);
  EXPECT_TRUE(client.InProcess());
}

TEST(LocalShardClientTest, DescribeNamesTheShard) {
  Shard shard(7);
  LocalShardClient client(shard);
  EXPECT_EQ(client.Describe(), "shard 7 (in process)");
}

TEST(LocalShardClientTest, TwoClientsShareOneShard) {
  Shard shard(0);
  LocalShardClient first(shard);
  LocalShardClient second(shard);
  ASSERT_TRUE(first.Increment(2).ok());
  Result<IncrementReply> reply = second.Increment(3);
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->count, 5);
  Result<int64_t> count = first.Count();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 5);
}

}  // namespace
}  // namespace shardctl::core
