#include "core/counter.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

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

TEST(CounterTest, StartsAtZero) {
  Counter counter;
  EXPECT_EQ(counter.Load(), 0);
}

TEST(CounterTest, AddReturnsTheCountRightAfterIt) {
  Counter counter;
  Result<int64_t> first = counter.Add(5);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 5);
  Result<int64_t> second = counter.Add(-8);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, -3);
  EXPECT_EQ(counter.Load(), -3);
}

TEST(CounterTest, ReachesInt64MaxAndMinExactly) {
  Counter up;
  ASSERT_TRUE(up.Add(kMax).ok());
  EXPECT_EQ(up.Load(), kMax);

  Counter down;
  ASSERT_TRUE(down.Add(kMin).ok());
  EXPECT_EQ(down.Load(), kMin);
}

TEST(CounterTest, OverflowIsRefusedAndLeavesTheCountUnchanged) {
  Counter counter;
  ASSERT_TRUE(counter.Add(kMax - 1).ok());

  Result<int64_t> refused = counter.Add(2);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kOutOfRange);
  EXPECT_EQ(counter.Load(), kMax - 1);

  // The counter still works after a refusal.
  Result<int64_t> accepted = counter.Add(1);
  ASSERT_TRUE(accepted.ok());
  EXPECT_EQ(*accepted, kMax);
}

TEST(CounterTest, UnderflowIsRefusedAndLeavesTheCountUnchanged) {
  Counter counter;
  ASSERT_TRUE(counter.Add(kMin).ok());

  Result<int64_t> refused = counter.Add(-1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kOutOfRange);
  EXPECT_EQ(counter.Load(), kMin);
}

TEST(CounterTest, ConcurrentAddsAreEachAppliedExactlyOnce) {
  constexpr int kThreads = 4;
  constexpr int kAddsPerThread = 20000;
  Counter counter;
  // Each thread keeps the counts its own Adds returned.
  std::vector<std::vector<int64_t>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&counter, &mine = seen[t]] {
      mine.reserve(kAddsPerThread);
      for (int i = 0; i < kAddsPerThread; ++i) {
        Result<int64_t> count = counter.Add(1);
        if (count.ok()) mine.push_back(*count);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  constexpr int64_t kTotal = int64_t{kThreads} * kAddsPerThread;
  EXPECT_EQ(counter.Load(), kTotal);

  // Every Add saw a distinct count: together they are exactly 1..kTotal.
  std::vector<int64_t> all;
  for (const auto& mine : seen) all.insert(all.end(), mine.begin(), mine.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kTotal));
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < kTotal; ++i) ASSERT_EQ(all[i], i + 1);
}

TEST(CounterTest, ConcurrentMixedAddsGiveTheExactSum) {
  constexpr int kThreads = 4;
  constexpr int kAddsPerThread = 10000;
  Counter counter;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    // Threads 0 and 2 add 3, threads 1 and 3 add -1.
    const int64_t delta = t % 2 == 0 ? 3 : -1;
    threads.emplace_back([&counter, delta] {
      for (int i = 0; i < kAddsPerThread; ++i) (void)counter.Add(delta);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(counter.Load(), int64_t{2} * kAddsPerThread * 3 - int64_t{2} * kAddsPerThread);
}

TEST(CounterTest, ConcurrentAddsNearTheLimitNeverOverflow) {
  constexpr int kThreads = 4;
  constexpr int kAddsPerThread = 1000;
  constexpr int64_t kRoom = 1500;  // fewer than the kThreads * kAddsPerThread attempts
  Counter counter;
  ASSERT_TRUE(counter.Add(kMax - kRoom).ok());

  std::vector<int> accepted(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&counter, &mine = accepted[t]] {
      for (int i = 0; i < kAddsPerThread; ++i) {
        if (counter.Add(1).ok()) ++mine;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  int total_accepted = 0;
  for (int n : accepted) total_accepted += n;
  EXPECT_EQ(total_accepted, kRoom);
  EXPECT_EQ(counter.Load(), kMax);
}

}  // namespace
}  // namespace shardctl::core
