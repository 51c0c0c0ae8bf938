#include "core/shard.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

namespace shardctl::core {
namespace {

using test::kMax;
using test::kMin;
using test::Plain;
using test::Request;
using test::Windowed;

// A clock the test sets: the shard reads `now` whenever it needs the time.
struct FakeClock {
  int64_t now = 0;
  Shard::NowFn Fn() {
    return [this] { return now; };
  }
};

// The listed parts sorted by name, since List promises no order.
std::vector<CounterPart> Sorted(std::vector<CounterPart> parts) {
  std::sort(parts.begin(), parts.end(),
            [](const CounterPart& a, const CounterPart& b) { return a.name < b.name; });
  return parts;
}

// --- The default counter ---------------------------------------------------

TEST(ShardTest, StartsEmptyAtZeroWithItsId) {
  Shard shard(3);
  EXPECT_EQ(shard.id(), 3);
  EXPECT_EQ(shard.Count(CounterRef{}), (CountReply{3, 0, 0}));
  EXPECT_EQ(shard.size(), 0u);
  EXPECT_TRUE(shard.List("").empty());
}

TEST(ShardTest, IncrementReturnsItsIdAndTheNewCount) {
  Shard shard(2);
  Result<IncrementReply> first = shard.Increment(Request(5));
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, (IncrementReply{2, 5, 0}));

  Result<IncrementReply> second = shard.Increment(Request(1));
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(*second, (IncrementReply{2, 6, 0}));
  EXPECT_EQ(shard.Count(CounterRef{}), (CountReply{2, 6, 0}));
}

TEST(ShardTest, TakesNegativeAndZeroValues) {
  Shard shard(0);
  ASSERT_TRUE(shard.Increment(Request(-7)).ok());
  ASSERT_TRUE(shard.Increment(Request(0)).ok());
  Result<IncrementReply> reply = shard.Increment(Request(-1));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->count, -8);
  EXPECT_EQ(shard.Count(CounterRef{}).count, -8);
}

TEST(ShardTest, TheDefaultCounterIsThePlainCounterNamedDefault) {
  Shard shard(0);
  ASSERT_TRUE(shard.Increment(Request(4)).ok());
  ASSERT_TRUE(shard.Increment(Request(3, Plain("default"))).ok());
  EXPECT_EQ(shard.Count(CounterRef{}).count, 7);
  EXPECT_EQ(shard.List(""), (std::vector<CounterPart>{{"default", 7}}));
}

// --- Overflow --------------------------------------------------------------

TEST(ShardTest, OverflowIsOutOfRangeAndLeavesTheCountUnchanged) {
  Shard shard(4);
  ASSERT_TRUE(shard.Increment(Request(kMax)).ok());
  Result<IncrementReply> refused = shard.Increment(Request(1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kOutOfRange);
  EXPECT_EQ(shard.Count(CounterRef{}).count, kMax);
}

TEST(ShardTest, UnderflowIsOutOfRangeAndLeavesTheCountUnchanged) {
  Shard shard(4);
  ASSERT_TRUE(shard.Increment(Request(kMin)).ok());
  Result<IncrementReply> refused = shard.Increment(Request(-1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kOutOfRange);
  EXPECT_EQ(shard.Count(CounterRef{}).count, kMin);
}

TEST(ShardTest, OverflowMessageNamesTheShardAndTheCounter) {
  Shard shard(4);
  ASSERT_TRUE(shard.Increment(Request(kMax, Plain("pageviews"))).ok());
  Result<IncrementReply> refused = shard.Increment(Request(kMax, Plain("pageviews")));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("shard 4"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("pageviews"), std::string::npos)
      << refused.status().message();
}

TEST(ShardTest, OverflowOfOneCounterLeavesItAndTheOthersUnchanged) {
  FakeClock clock{100};
  Shard shard(1, clock.Fn());
  ASSERT_TRUE(shard.Increment(Request(kMax, Plain("full"))).ok());
  ASSERT_TRUE(shard.Increment(Request(5, Plain("other"))).ok());
  ASSERT_TRUE(shard.Increment(Request(kMin, Windowed("full", 60))).ok());

  Result<IncrementReply> refused = shard.Increment(Request(1, Plain("full")));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kOutOfRange);
  Result<IncrementReply> refused_window = shard.Increment(Request(-1, Windowed("full", 60)));
  ASSERT_FALSE(refused_window.ok());
  EXPECT_EQ(refused_window.status().code(), Code::kOutOfRange);

  EXPECT_EQ(shard.Count(Plain("full")).count, kMax);
  EXPECT_EQ(shard.Count(Windowed("full", 60)).count, kMin);
  EXPECT_EQ(shard.Count(Plain("other")).count, 5);
  EXPECT_EQ(shard.size(), 3u);

  // The refused counter still takes increments that fit.
  Result<IncrementReply> accepted = shard.Increment(Request(-1, Plain("full")));
  ASSERT_TRUE(accepted.ok()) << accepted.status().message();
  EXPECT_EQ(accepted->count, kMax - 1);
}

// --- Named counters --------------------------------------------------------

TEST(ShardTest, NamedCountersAreIndependent) {
  Shard shard(0);
  ASSERT_TRUE(shard.Increment(Request(3, Plain("a"))).ok());
  ASSERT_TRUE(shard.Increment(Request(5, Plain("b"))).ok());
  ASSERT_TRUE(shard.Increment(Request(1)).ok());
  Result<IncrementReply> reply = shard.Increment(Request(10, Plain("a")));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (IncrementReply{0, 13, 0}));

  EXPECT_EQ(shard.Count(Plain("a")).count, 13);
  EXPECT_EQ(shard.Count(Plain("b")).count, 5);
  EXPECT_EQ(shard.Count(CounterRef{}).count, 1);
  EXPECT_EQ(shard.size(), 3u);
}

TEST(ShardTest, CountOfANameNeverSeenIsZeroAndCreatesNothing) {
  Shard shard(6);
  ASSERT_TRUE(shard.Increment(Request(2, Plain("seen"))).ok());
  EXPECT_EQ(shard.Count(Plain("unseen")), (CountReply{6, 0, 0}));
  EXPECT_EQ(shard.size(), 1u);
}

TEST(ShardTest, NamesThatShareAPrefixAreDifferentCounters) {
  Shard shard(0);
  ASSERT_TRUE(shard.Increment(Request(1, Plain("api"))).ok());
  ASSERT_TRUE(shard.Increment(Request(2, Plain("api:c1"))).ok());
  ASSERT_TRUE(shard.Increment(Request(4, Plain("ap"))).ok());
  EXPECT_EQ(shard.Count(Plain("api")).count, 1);
  EXPECT_EQ(shard.Count(Plain("api:c1")).count, 2);
  EXPECT_EQ(shard.Count(Plain("ap")).count, 4);
}

// --- Windowed counters -----------------------------------------------------

TEST(ShardTest, WindowedCounterCountsIntoTheCurrentWindowAndRestartsInTheNext) {
  FakeClock clock{100};  // in the 60-second window [60, 120)
  Shard shard(2, clock.Fn());
  const CounterRef api = Windowed("api:c42", 60);

  Result<IncrementReply> first = shard.Increment(Request(3, api));
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, (IncrementReply{2, 3, 120}));
  clock.now = 119;  // the window's last second
  Result<IncrementReply> second = shard.Increment(Request(2, api));
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(*second, (IncrementReply{2, 5, 120}));
  EXPECT_EQ(shard.Count(api), (CountReply{2, 5, 120}));

  clock.now = 120;  // the next window [120, 180) starts
  EXPECT_EQ(shard.Count(api), (CountReply{2, 0, 180}));
  Result<IncrementReply> next = shard.Increment(Request(1, api));
  ASSERT_TRUE(next.ok()) << next.status().message();
  EXPECT_EQ(*next, (IncrementReply{2, 1, 180}));
  EXPECT_EQ(shard.Count(api), (CountReply{2, 1, 180}));
}

TEST(ShardTest, CountOfAWindowedCounterAfterItsWindowEndedIsZero) {
  FakeClock clock{65};
  Shard shard(1, clock.Fn());
  const CounterRef api = Windowed("api", 60);
  ASSERT_TRUE(shard.Increment(Request(7, api)).ok());

  clock.now = 250;  // two windows later: [240, 300)
  EXPECT_EQ(shard.Count(api), (CountReply{1, 0, 300}));
}

TEST(ShardTest, CountOfAWindowedCounterNeverSeenIsZeroWithTheCurrentWindowEnd) {
  FakeClock clock{3601};
  Shard shard(0, clock.Fn());
  EXPECT_EQ(shard.Count(Windowed("fresh", 3600)), (CountReply{0, 0, 7200}));
  EXPECT_EQ(shard.size(), 0u);
}

TEST(ShardTest, WindowedCounterIsSeparateFromThePlainCounterOfTheSameName) {
  FakeClock clock{10};
  Shard shard(0, clock.Fn());
  ASSERT_TRUE(shard.Increment(Request(2, Plain("api"))).ok());
  ASSERT_TRUE(shard.Increment(Request(3, Windowed("api", 60))).ok());
  ASSERT_TRUE(shard.Increment(Request(4, Windowed("api", 3600))).ok());

  EXPECT_EQ(shard.Count(Plain("api")).count, 2);
  EXPECT_EQ(shard.Count(Windowed("api", 60)).count, 3);
  EXPECT_EQ(shard.Count(Windowed("api", 3600)).count, 4);
  EXPECT_EQ(shard.size(), 3u);
}

TEST(ShardTest, WindowedCounterBeforeTheEpochAlignsDownwards) {
  FakeClock clock{-1};  // in the window [-60, 0)
  Shard shard(0, clock.Fn());
  Result<IncrementReply> reply = shard.Increment(Request(1, Windowed("old", 60)));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->window_end, 0);
  clock.now = 0;
  EXPECT_EQ(shard.Count(Windowed("old", 60)), (CountReply{0, 0, 60}));
}

// --- DropExpiredWindows ----------------------------------------------------

TEST(ShardTest, DropExpiredWindowsDropsOnlyEndedWindows) {
  FakeClock clock{100};
  Shard shard(0, clock.Fn());
  ASSERT_TRUE(shard.Increment(Request(1, Plain("plain"))).ok());
  ASSERT_TRUE(shard.Increment(Request(2, Windowed("minute", 60))).ok());  // ends at 120
  ASSERT_TRUE(shard.Increment(Request(3, Windowed("hour", 3600))).ok());  // ends at 3600
  ASSERT_EQ(shard.size(), 3u);

  clock.now = 119;  // nothing has ended yet
  EXPECT_EQ(shard.DropExpiredWindows(), 0u);
  EXPECT_EQ(shard.size(), 3u);

  clock.now = 120;  // the minute window has just ended
  EXPECT_EQ(shard.DropExpiredWindows(), 1u);
  EXPECT_EQ(shard.size(), 2u);
  EXPECT_EQ(shard.Count(Plain("plain")).count, 1);
  EXPECT_EQ(shard.Count(Windowed("hour", 3600)).count, 3);
  EXPECT_EQ(shard.Count(Windowed("minute", 60)).count, 0);

  // Dropping again finds nothing more.
  EXPECT_EQ(shard.DropExpiredWindows(), 0u);
  EXPECT_EQ(shard.size(), 2u);
}

TEST(ShardTest, DropExpiredWindowsKeepsTheCurrentWindowOfACounterThatMovedOn) {
  FakeClock clock{100};
  Shard shard(0, clock.Fn());
  const CounterRef minute = Windowed("minute", 60);
  ASSERT_TRUE(shard.Increment(Request(2, minute)).ok());
  clock.now = 130;  // a new window; the increment replaces the ended one
  ASSERT_TRUE(shard.Increment(Request(5, minute)).ok());

  EXPECT_EQ(shard.DropExpiredWindows(), 0u);
  EXPECT_EQ(shard.size(), 1u);
  EXPECT_EQ(shard.Count(minute), (CountReply{0, 5, 180}));
}

TEST(ShardTest, DropExpiredWindowsOfAnEmptyShardDropsNothing) {
  Shard shard(0);
  EXPECT_EQ(shard.DropExpiredWindows(), 0u);
  EXPECT_EQ(shard.size(), 0u);
}

TEST(ShardTest, WindowDroppedAfterItEndedRestartsAtZero) {
  FakeClock clock{100};
  Shard shard(0, clock.Fn());
  const CounterRef minute = Windowed("minute", 60);
  ASSERT_TRUE(shard.Increment(Request(9, minute)).ok());
  clock.now = 200;
  ASSERT_EQ(shard.DropExpiredWindows(), 1u);
  Result<IncrementReply> reply = shard.Increment(Request(1, minute));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (IncrementReply{0, 1, 240}));
}

// Counts 1 in `n` windows of 60 s, one each of clients client:0.. .
void CountMinuteWindows(Shard& shard, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(shard.Increment(Request(1, Windowed("client:" + std::to_string(i), 60))).ok());
  }
}

TEST(ShardTest, DropExpiredWindowsHoldsTheLockForOneBoundedSliceAtATime) {
  FakeClock clock{0};
  Shard shard(0, clock.Fn());
  const size_t windows = 2 * Shard::kExpirySlice + 5;
  ASSERT_NO_FATAL_FAILURE(CountMinuteWindows(shard, windows));
  ASSERT_TRUE(shard.Increment(Request(1, Windowed("client:0", 3600))).ok());
  clock.now = 60;
  EXPECT_EQ(shard.DropExpiredWindows(), windows);
  EXPECT_EQ(shard.largest_expiry_slice(), Shard::kExpirySlice);
  EXPECT_EQ(shard.size(), 1u);
  EXPECT_EQ(shard.Count(Windowed("client:0", 3600)).count, 1);
}

TEST(ShardTest, DropExpiredWindowsPacedStopsAtItsDeadlineAndTheNextCallGoesOn) {
  using Clock = std::chrono::steady_clock;
  FakeClock clock{0};
  Shard shard(0, clock.Fn());
  const size_t windows = 2 * Shard::kExpirySlice + 5;
  ASSERT_NO_FATAL_FAILURE(CountMinuteWindows(shard, windows));
  ASSERT_TRUE(shard.Increment(Request(1, Plain("plain"))).ok());
  clock.now = 60;
  // A deadline already past: one slice, then the rest waits for the next call.
  EXPECT_EQ(shard.DropExpiredWindowsPaced(Clock::now()), Shard::kExpirySlice);
  EXPECT_EQ(shard.size(), windows - Shard::kExpirySlice + 1);
  // Time enough: the other two slices, with a rest between them.
  EXPECT_EQ(shard.DropExpiredWindowsPaced(Clock::now() + std::chrono::seconds(30)),
            windows - Shard::kExpirySlice);
  EXPECT_EQ(shard.size(), 1u);
  EXPECT_EQ(shard.DropExpiredWindowsPaced(Clock::now() + std::chrono::seconds(30)), 0u);
  EXPECT_EQ(shard.largest_expiry_slice(), Shard::kExpirySlice);
  EXPECT_EQ(shard.Count(Plain("plain")).count, 1);
}

TEST(ShardTest, DropExpiredDropsASliceOfWindowsAndEveryKeyPastItsWindow) {
  FakeClock clock{0};
  Shard shard(0, clock.Fn(), nullptr, /*key_window_seconds=*/30);
  const size_t windows = Shard::kExpirySlice + 5;
  ASSERT_NO_FATAL_FAILURE(CountMinuteWindows(shard, windows));
  ASSERT_TRUE(shard.Increment(test::KeyedRequest(1, "k1")).ok());
  ASSERT_EQ(shard.key_count(), 1u);
  clock.now = 60;
  // A deadline already past (a tick whose budget the shards before spent).
  shard.DropExpired(std::chrono::steady_clock::now());
  EXPECT_EQ(shard.size(), windows - Shard::kExpirySlice + 1);  // the plain counter of k1 stays
  EXPECT_EQ(shard.key_count(), 0u);
}

TEST(ShardTest, ResetRemovesOnlyTheWindowsOfItsName) {
  FakeClock clock{0};
  Shard shard(0, clock.Fn());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(shard.Increment(Request(1, Windowed("c:" + std::to_string(i), 60))).ok());
  }
  ASSERT_TRUE(shard.Increment(Request(4, Plain("c:7"))).ok());
  Result<int64_t> reset = shard.Reset("c:7");
  ASSERT_TRUE(reset.ok());
  EXPECT_EQ(*reset, 4);
  EXPECT_EQ(shard.size(), 99u);
  EXPECT_EQ(shard.Count(Windowed("c:7", 60)).count, 0);
  EXPECT_EQ(shard.Count(Windowed("c:70", 60)).count, 1);
}

// --- List ------------------------------------------------------------------

TEST(ShardTest, ListReturnsOnlyPlainCountersWithThePrefix) {
  FakeClock clock{10};
  Shard shard(0, clock.Fn());
  ASSERT_TRUE(shard.Increment(Request(1, Plain("api:a"))).ok());
  ASSERT_TRUE(shard.Increment(Request(2, Plain("api:b"))).ok());
  ASSERT_TRUE(shard.Increment(Request(3, Plain("apx"))).ok());
  ASSERT_TRUE(shard.Increment(Request(4, Plain("web"))).ok());
  ASSERT_TRUE(shard.Increment(Request(5, Windowed("api:a", 60))).ok());
  ASSERT_TRUE(shard.Increment(Request(6, Windowed("api:w", 60))).ok());

  EXPECT_EQ(Sorted(shard.List("api:")), (std::vector<CounterPart>{{"api:a", 1}, {"api:b", 2}}));
  EXPECT_EQ(Sorted(shard.List("ap")),
            (std::vector<CounterPart>{{"api:a", 1}, {"api:b", 2}, {"apx", 3}}));
  EXPECT_EQ(shard.List("api:a"), (std::vector<CounterPart>{{"api:a", 1}}));
  EXPECT_TRUE(shard.List("zzz").empty());
}

TEST(ShardTest, ListOfALargeShardReturnsEveryCounterOnceInNameOrder) {
  Shard shard(0);
  // List reads a page at a time: more names than a few pages.
  std::vector<CounterPart> expected;
  for (int i = 0; i < 10000; ++i) {
    std::string name = "c:" + std::to_string(100000 + i);
    ASSERT_TRUE(shard.Increment(Request(i, Plain(name))).ok());
    expected.push_back({name, i});
  }
  EXPECT_EQ(shard.List(""), expected);
  EXPECT_EQ(shard.List("c:1099").size(), 100u);
}

TEST(ShardTest, ListWithAnEmptyPrefixReturnsEveryPlainCounter) {
  FakeClock clock{10};
  Shard shard(0, clock.Fn());
  // Windows under the same names: only the plain counters come back.
  std::vector<CounterPart> expected;
  for (int i = 0; i < 40; ++i) {
    std::string name = "c" + std::to_string(100 + i);
    ASSERT_TRUE(shard.Increment(Request(i - 20, Plain(name))).ok());
    ASSERT_TRUE(shard.Increment(Request(1, Windowed(name, 60))).ok());
    expected.push_back({name, i - 20});
  }
  EXPECT_EQ(Sorted(shard.List("")), expected);
}

// --- Reset -----------------------------------------------------------------

TEST(ShardTest, ResetRemovesThePlainCounterAndAllItsWindowsAndReturnsThePlainCount) {
  FakeClock clock{100};
  Shard shard(0, clock.Fn());
  ASSERT_TRUE(shard.Increment(Request(5, Plain("api"))).ok());
  ASSERT_TRUE(shard.Increment(Request(3, Windowed("api", 60))).ok());
  ASSERT_TRUE(shard.Increment(Request(2, Windowed("api", 3600))).ok());
  ASSERT_TRUE(shard.Increment(Request(7, Plain("apis"))).ok());
  ASSERT_TRUE(shard.Increment(Request(8, Plain("api:c1"))).ok());
  ASSERT_TRUE(shard.Increment(Request(9, Windowed("apis", 60))).ok());
  ASSERT_EQ(shard.size(), 6u);

  EXPECT_EQ(*shard.Reset("api"), 5);
  EXPECT_EQ(shard.size(), 3u);
  EXPECT_EQ(shard.Count(Plain("api")).count, 0);
  EXPECT_EQ(shard.Count(Windowed("api", 60)).count, 0);
  EXPECT_EQ(shard.Count(Windowed("api", 3600)).count, 0);
  // Counters whose names merely start with "api" are untouched.
  EXPECT_EQ(shard.Count(Plain("apis")).count, 7);
  EXPECT_EQ(shard.Count(Plain("api:c1")).count, 8);
  EXPECT_EQ(shard.Count(Windowed("apis", 60)).count, 9);
}

TEST(ShardTest, ResetOfANameNeverSeenReturnsZeroAndRemovesNothing) {
  Shard shard(0);
  ASSERT_TRUE(shard.Increment(Request(4, Plain("kept"))).ok());
  EXPECT_EQ(*shard.Reset("missing"), 0);
  EXPECT_EQ(shard.size(), 1u);
  EXPECT_EQ(shard.Count(Plain("kept")).count, 4);
}

TEST(ShardTest, ResetOfACounterWithOnlyWindowsReturnsZeroAndRemovesThem) {
  FakeClock clock{100};
  Shard shard(0, clock.Fn());
  ASSERT_TRUE(shard.Increment(Request(3, Windowed("burst", 60))).ok());
  EXPECT_EQ(*shard.Reset("burst"), 0);
  EXPECT_EQ(shard.size(), 0u);
  EXPECT_EQ(shard.Count(Windowed("burst", 60)).count, 0);
}

TEST(ShardTest, ResetReturnsANegativePlainCount) {
  Shard shard(0);
  ASSERT_TRUE(shard.Increment(Request(kMin, Plain("low"))).ok());
  EXPECT_EQ(*shard.Reset("low"), kMin);
  EXPECT_EQ(shard.size(), 0u);
}

TEST(ShardTest, CounterAfterResetStartsAgainAtZero) {
  Shard shard(0);
  ASSERT_TRUE(shard.Increment(Request(kMax, Plain("a"))).ok());
  ASSERT_EQ(*shard.Reset("a"), kMax);
  Result<IncrementReply> reply = shard.Increment(Request(1, Plain("a")));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->count, 1);
}

// --- Concurrency -----------------------------------------------------------

TEST(ShardTest, ConcurrentIncrementsOnSeveralNamesSumExactly) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 5000;
  const std::vector<CounterRef> counters = {
      CounterRef{},     Plain("a"),        Plain("b"),
      Plain("api:c42"), Windowed("a", 60), Windowed("b", 3600),
  };
  FakeClock clock{1000};  // never changes while the threads run
  Shard shard(1, clock.Fn());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&shard, &counters, t] {
      // Threads add 3 or -1 in turn, to every counter each round.
      const int64_t delta = t % 2 == 0 ? 3 : -1;
      for (int i = 0; i < kRounds; ++i) {
        for (const CounterRef& counter : counters) {
          Result<IncrementReply> reply = shard.Increment(Request(delta, counter));
          EXPECT_TRUE(reply.ok());
          EXPECT_EQ(reply->shard_id, 1);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  constexpr int64_t kExpected = int64_t{2} * kRounds * 3 - int64_t{2} * kRounds;
  for (const CounterRef& counter : counters) {
    EXPECT_EQ(shard.Count(counter).count, kExpected) << counter.name << "@" << counter.window;
  }
  EXPECT_EQ(shard.size(), counters.size());
}

TEST(ShardTest, ConcurrentIncrementsOfOneCounterEachSeeADistinctCount) {
  constexpr int kThreads = 4;
  constexpr int kIncrementsPerThread = 10000;
  Shard shard(0);
  // Each thread keeps the counts its own increments returned.
  std::vector<std::vector<int64_t>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&shard, &mine = seen[t]] {
      mine.reserve(kIncrementsPerThread);
      for (int i = 0; i < kIncrementsPerThread; ++i) {
        Result<IncrementReply> reply = shard.Increment(Request(1, Plain("hits")));
        if (reply.ok()) mine.push_back(reply->count);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  constexpr int64_t kTotal = int64_t{kThreads} * kIncrementsPerThread;
  EXPECT_EQ(shard.Count(Plain("hits")).count, kTotal);
  // Together the replies are exactly 1..kTotal: no increment was lost or doubled.
  std::vector<int64_t> all;
  for (const auto& mine : seen) all.insert(all.end(), mine.begin(), mine.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kTotal));
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < kTotal; ++i) ASSERT_EQ(all[i], i + 1);
}

TEST(ShardTest, ConcurrentIncrementsNearTheLimitNeverOverflow) {
  constexpr int kThreads = 4;
  constexpr int kIncrementsPerThread = 1000;
  constexpr int64_t kRoom = 1500;  // fewer than the kThreads * kIncrementsPerThread attempts
  Shard shard(0);
  ASSERT_TRUE(shard.Increment(Request(kMax - kRoom, Plain("near"))).ok());

  std::vector<int> accepted(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&shard, &mine = accepted[t]] {
      for (int i = 0; i < kIncrementsPerThread; ++i) {
        if (shard.Increment(Request(1, Plain("near"))).ok()) ++mine;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  int total_accepted = 0;
  for (int n : accepted) total_accepted += n;
  EXPECT_EQ(total_accepted, kRoom);
  EXPECT_EQ(shard.Count(Plain("near")).count, kMax);
}

TEST(ShardTest, ConcurrentResetsAndIncrementsLoseNothing) {
  // One thread increments while another resets the same counter: every
  // increment ends up either in a reset's return value or in the final count.
  constexpr int kIncrements = 20000;
  Shard shard(0);
  int64_t reset_total = 0;
  std::thread adder([&shard] {
    for (int i = 0; i < kIncrements; ++i) EXPECT_TRUE(shard.Increment(Request(1, Plain("r"))).ok());
  });
  std::thread resetter([&shard, &reset_total] {
    for (int i = 0; i < kIncrements / 10; ++i) reset_total += *shard.Reset("r");
  });
  adder.join();
  resetter.join();
  EXPECT_EQ(reset_total + shard.Count(Plain("r")).count, kIncrements);
}

// --- LocalShardClient ------------------------------------------------------

TEST(LocalShardClientTest, IncrementReachesTheShard) {
  Shard shard(1);
  LocalShardClient client(shard);
  Result<IncrementReply> reply = client.Increment(Request(5));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (IncrementReply{1, 5, 0}));
  EXPECT_EQ(shard.Count(CounterRef{}).count, 5);
}

TEST(LocalShardClientTest, IncrementOfANamedWindowedCounterReachesTheShard) {
  FakeClock clock{61};
  Shard shard(1, clock.Fn());
  LocalShardClient client(shard);
  Result<IncrementReply> reply = client.Increment(Request(2, Windowed("api", 60)));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (IncrementReply{1, 2, 120}));
  EXPECT_EQ(shard.Count(Windowed("api", 60)).count, 2);
  EXPECT_EQ(shard.Count(Plain("api")).count, 0);
}

TEST(LocalShardClientTest, CountReadsTheShard) {
  Shard shard(1);
  ASSERT_TRUE(shard.Increment(Request(-9)).ok());
  ASSERT_TRUE(shard.Increment(Request(4, Plain("named"))).ok());
  LocalShardClient client(shard);
  Result<CountReply> count = client.Count(CounterRef{});
  ASSERT_TRUE(count.ok()) << count.status().message();
  EXPECT_EQ(*count, (CountReply{1, -9, 0}));
  Result<CountReply> named = client.Count(Plain("named"));
  ASSERT_TRUE(named.ok()) << named.status().message();
  EXPECT_EQ(*named, (CountReply{1, 4, 0}));
}

TEST(LocalShardClientTest, ListReadsTheShard) {
  Shard shard(0);
  ASSERT_TRUE(shard.Increment(Request(1, Plain("x:a"))).ok());
  ASSERT_TRUE(shard.Increment(Request(2, Plain("y:b"))).ok());
  LocalShardClient client(shard);
  Result<std::vector<CounterPart>> parts = client.List("x:");
  ASSERT_TRUE(parts.ok()) << parts.status().message();
  EXPECT_EQ(*parts, (std::vector<CounterPart>{{"x:a", 1}}));
}

TEST(LocalShardClientTest, ResetRemovesFromTheShard) {
  Shard shard(0);
  ASSERT_TRUE(shard.Increment(Request(6, Plain("gone"))).ok());
  LocalShardClient client(shard);
  Result<int64_t> removed = client.Reset("gone");
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 6);
  EXPECT_EQ(shard.size(), 0u);
}

TEST(LocalShardClientTest, PassesTheShardsRefusalThrough) {
  Shard shard(2);
  LocalShardClient client(shard);
  ASSERT_TRUE(client.Increment(Request(kMax)).ok());
  Result<IncrementReply> refused = client.Increment(Request(1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kOutOfRange);
  EXPECT_EQ(shard.Count(CounterRef{}).count, kMax);
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
  ASSERT_TRUE(first.Increment(Request(2)).ok());
  Result<IncrementReply> reply = second.Increment(Request(3));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->count, 5);
  Result<CountReply> count = first.Count(CounterRef{});
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->count, 5);
}

// --- Pages by name and by count (the leaderboard's sorted access) ----------

// A shard holding the plain counters `counts` (name, count), and a windowed
// counter that no listing shows.
void Fill(Shard& shard, const std::vector<std::pair<std::string, int64_t>>& counts) {
  for (const auto& [name, count] : counts) {
    ASSERT_TRUE(shard.Increment(Request(count, Plain(name))).ok());
  }
  ASSERT_TRUE(shard.Increment(Request(1000, Windowed("a:hidden", 60))).ok());
}

RankQuery First(size_t limit, std::string prefix = "") {
  RankQuery query;
  query.prefix = std::move(prefix);
  query.limit = limit;
  return query;
}

RankQuery After(int64_t count, std::string name, size_t limit) {
  RankQuery query;
  query.from_start = false;
  query.after = {count, std::move(name)};
  query.limit = limit;
  return query;
}

std::vector<std::string> Names(const std::vector<CounterPart>& parts) {
  std::vector<std::string> names;
  for (const CounterPart& part : parts) names.push_back(part.name);
  return names;
}

TEST(ShardPageTest, APageHoldsTheNamesAfterTheCursorWithThePrefixInNameOrder) {
  FakeClock clock;
  Shard shard(0, clock.Fn());
  Fill(shard, {{"b:2", 2}, {"a:1", 1}, {"a:3", 3}, {"a:2", -2}, {"ab", 5}, {"c", 7}});
  EXPECT_EQ(shard.ListPage({"", "", 3}),
            (std::vector<CounterPart>{{"a:1", 1}, {"a:2", -2}, {"a:3", 3}}));
  EXPECT_EQ(Names(shard.ListPage({"", "a:3", 10})), (std::vector<std::string>{"ab", "b:2", "c"}));
  EXPECT_EQ(Names(shard.ListPage({"a:", "a:1", 10})), (std::vector<std::string>{"a:2", "a:3"}));
  EXPECT_EQ(Names(shard.ListPage({"a", "", 10})),
            (std::vector<std::string>{"a:1", "a:2", "a:3", "ab"}));
  EXPECT_TRUE(shard.ListPage({"", "c", 10}).empty());
  EXPECT_TRUE(shard.ListPage({"z", "", 10}).empty());
  // The cursor need not be a name the shard holds.
  EXPECT_EQ(Names(shard.ListPage({"", "a:25", 2})), (std::vector<std::string>{"a:3", "ab"}));
}

TEST(ShardPageTest, ARankPageIsByCountHighestFirstTiesByNameAndGoesOnAfterItsCursor) {
  FakeClock clock;
  Shard shard(0, clock.Fn());
  Fill(shard, {{"d", 5}, {"a", 5}, {"b", -3}, {"c", 9}, {"e", 0}, {"x:1", 7}});
  std::vector<CounterPart> all = shard.Rank(First(100));
  EXPECT_EQ(all, (std::vector<CounterPart>{
                     {"c", 9}, {"x:1", 7}, {"a", 5}, {"d", 5}, {"e", 0}, {"b", -3}}));
  EXPECT_EQ(shard.Rank(First(2)), (std::vector<CounterPart>{{"c", 9}, {"x:1", 7}}));
  // From each place in the order, the rest of it.
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(shard.Rank(After(all[i].count, all[i].name, 100)), std::vector<CounterPart>(all.begin() + i + 1, all.end())) << i;
  }
  // Between two ties; and a cursor that is no counter of the shard.
  EXPECT_EQ(Names(shard.Rank(After(5, "b", 1))),
            std::vector<std::string>{"d"});
  EXPECT_EQ(Names(shard.Rank(After(6, "zzz", 2))),
            (std::vector<std::string>{"a", "d"}));
  EXPECT_EQ(Names(shard.Rank(First(10, "x:"))), std::vector<std::string>{"x:1"});
  // Counts move a counter in the order.
  ASSERT_TRUE(shard.Increment(Request(-20, Plain("c"))).ok());
  EXPECT_EQ(shard.Rank(First(100)).back(), (CounterPart{"c", -11}));
  ASSERT_TRUE(shard.Reset("x:1").ok());
  EXPECT_EQ(shard.Rank(First(1)), (std::vector<CounterPart>{{"a", 5}}));
}

TEST(ShardPageTest, CountsAreTheShardsPartsOfTheNamedPlainCountersInOrder) {
  FakeClock clock;
  Shard shard(0, clock.Fn());
  Fill(shard, {{"a", 4}, {"b", -2}});
  EXPECT_EQ(shard.Counts({"b", "missing", "a", "a:hidden"}), (std::vector<int64_t>{-2, 0, 4, 0}));
  EXPECT_TRUE(shard.Counts({}).empty());
}

}  // namespace
}  // namespace shardctl::core
