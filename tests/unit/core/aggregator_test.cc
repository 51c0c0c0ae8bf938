#include "core/aggregator.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/router.h"
#include "core/shard.h"
#include "core/shard_client.h"
#include "core/status.h"

namespace shardctl::core {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// Lets a fixed number of callers wait until all of them have arrived, so a
// test can tell calls made in parallel from calls made one after another.
class Rendezvous {
 public:
  explicit Rendezvous(int expected) : expected_(expected) {}

  // Returns true once all `expected` callers have arrived; false if they have
  // not within a generous deadline (the calls were not made in parallel).
  bool ArriveAndWait() {
    std::unique_lock<std::mutex> lock(mutex_);
    ++arrived_;
    all_arrived_.notify_all();
    return all_arrived_.wait_for(lock, std::chrono::seconds(5),
                                 [this] { return arrived_ >= expected_; });
  }

 private:
  const int expected_;
  std::mutex mutex_;
  std::condition_variable all_arrived_;
  int arrived_ = 0;
};

// A hand-written ShardClient whose count, failures and locality a test sets,
// and which records how it was called. Thread-safe.
class FakeShardClient : public ShardClient {
 public:
  FakeShardClient(int id, bool in_process) : id_(id), in_process_(in_process) {}

  void set_count(int64_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    count_ = count;
  }
  // Makes every later call fail with `code` and a message naming this shard.
  void FailWith(Code code) {
    std::lock_guard<std::mutex> lock(mutex_);
    failure_ = Status(code, Describe() + ": failed on purpose");
  }
  // REQUIRES: called before the client is shared between threads.
  void set_rendezvous(Rendezvous* rendezvous) { rendezvous_ = rendezvous; }

  std::vector<int64_t> increments() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return increments_;
  }
  std::vector<std::thread::id> count_threads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return count_threads_;
  }
  bool met_everyone() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return met_everyone_;
  }

  Result<IncrementReply> Increment(int64_t value) override {
    std::lock_guard<std::mutex> lock(mutex_);
    increments_.push_back(value);
    if (failure_) return *failure_;
    count_ += value;
    return IncrementReply{id_, count_};
  }

  Result<int64_t> Count() override {
    if (rendezvous_ != nullptr) {
      bool met = rendezvous_->ArriveAndWait();
      std::lock_guard<std::mutex> lock(mutex_);
      met_everyone_ = met;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    count_threads_.push_back(std::this_thread::get_id());
    if (failure_) return *failure_;
    return count_;
  }

  std::string Describe() const override { return "fake shard " + std::to_string(id_); }
  bool InProcess() const override { return in_process_; }

 private:
  const int id_;
  const bool in_process_;
  Rendezvous* rendezvous_ = nullptr;
  mutable std::mutex mutex_;
  int64_t count_ = 0;
  std::optional<Status> failure_;
  std::vector<int64_t> increments_;
  std::vector<std::thread::id> count_threads_;
  bool met_everyone_ = false;
};

// Builds an Aggregator over `n` fakes and keeps pointers to them for the test.
struct FakeCluster {
  FakeCluster(int n, bool in_process) {
    std::vector<std::unique_ptr<ShardClient>> clients;
    for (int i = 0; i < n; ++i) {
      auto fake = std::make_unique<FakeShardClient>(i, in_process);
      shards.push_back(fake.get());
      clients.push_back(std::move(fake));
    }
    aggregator.emplace(std::move(clients));
  }

  std::vector<FakeShardClient*> shards;
  std::optional<Aggregator> aggregator;
};

// --- Increment -------------------------------------------------------------

TEST(AggregatorTest, ShardCountIsTheNumberOfClients) {
  FakeCluster cluster(4, /*in_process=*/true);
  EXPECT_EQ(cluster.aggregator->shard_count(), 4);
}

TEST(AggregatorTest, IncrementGoesToTheShardThatOwnsTheValue) {
  constexpr int kShards = 3;
  const int64_t values[] = {0, 1, 2, 3, 4, 5, -1, -2, -3, -4, kMax, kMin};
  for (int64_t value : values) {
    SCOPED_TRACE(testing::Message() << "value " << value);
    FakeCluster cluster(kShards, /*in_process=*/true);
    Result<IncrementReply> reply = cluster.aggregator->Increment(value);
    ASSERT_TRUE(reply.ok()) << reply.status().message();

    const int owner = ShardFor(value, kShards);
    EXPECT_EQ(reply->shard_id, owner);
    for (int i = 0; i < kShards; ++i) {
      if (i == owner) {
        EXPECT_EQ(cluster.shards[i]->increments(), std::vector<int64_t>{value});
      } else {
        EXPECT_TRUE(cluster.shards[i]->increments().empty()) << "shard " << i << " was called";
      }
    }
  }
}

TEST(AggregatorTest, NegativeValueGoesToTheLastShard) {
  FakeCluster cluster(3, /*in_process=*/false);
  Result<IncrementReply> reply = cluster.aggregator->Increment(-1);
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->shard_id, 2);
  EXPECT_EQ(cluster.shards[2]->increments(), std::vector<int64_t>{-1});
  EXPECT_TRUE(cluster.shards[0]->increments().empty());
  EXPECT_TRUE(cluster.shards[1]->increments().empty());
}

TEST(AggregatorTest, IncrementReturnsTheShardsReply) {
  FakeCluster cluster(2, /*in_process=*/true);
  cluster.shards[1]->set_count(10);
  Result<IncrementReply> reply = cluster.aggregator->Increment(5);
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (IncrementReply{1, 15}));
}

TEST(AggregatorTest, IncrementPassesTheShardsFailureThrough) {
  for (Code code : {Code::kUnavailable, Code::kTimeout, Code::kOutOfRange, Code::kBadGateway}) {
    SCOPED_TRACE(testing::Message() << "code " << CodeName(code));
    FakeCluster cluster(2, /*in_process=*/false);
    cluster.shards[0]->FailWith(code);
    Result<IncrementReply> reply = cluster.aggregator->Increment(4);
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), code);
    EXPECT_EQ(reply.status().message(), "fake shard 0: failed on purpose");
  }
}

TEST(AggregatorTest, FailingShardDoesNotAffectIncrementsRoutedElsewhere) {
  FakeCluster cluster(2, /*in_process=*/false);
  cluster.shards[0]->FailWith(Code::kUnavailable);
  Result<IncrementReply> reply = cluster.aggregator->Increment(3);
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (IncrementReply{1, 3}));
}

// --- Total -----------------------------------------------------------------

TEST(AggregatorTest, TotalIsTheSumOfEveryShard) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(4, in_process);
    cluster.shards[0]->set_count(10);
    cluster.shards[1]->set_count(-3);
    cluster.shards[2]->set_count(0);
    cluster.shards[3]->set_count(100);
    Result<int64_t> total = cluster.aggregator->Total();
    ASSERT_TRUE(total.ok()) << total.status().message();
    EXPECT_EQ(*total, 107);
  }
}

TEST(AggregatorTest, TotalOfFreshShardsIsZero) {
  FakeCluster cluster(3, /*in_process=*/false);
  Result<int64_t> total = cluster.aggregator->Total();
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(*total, 0);
}

TEST(AggregatorTest, TotalAsksEveryShardExactlyOnce) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(5, in_process);
    ASSERT_TRUE(cluster.aggregator->Total().ok());
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(cluster.shards[i]->count_threads().size(), 1u) << "shard " << i;
    }
  }
}

TEST(AggregatorTest, TotalReachesInt64LimitsExactly) {
  FakeCluster at_max(2, /*in_process=*/true);
  at_max.shards[0]->set_count(kMax - 1);
  at_max.shards[1]->set_count(1);
  Result<int64_t> max_total = at_max.aggregator->Total();
  ASSERT_TRUE(max_total.ok()) << max_total.status().message();
  EXPECT_EQ(*max_total, kMax);

  FakeCluster at_min(2, /*in_process=*/true);
  at_min.shards[0]->set_count(kMin + 1);
  at_min.shards[1]->set_count(-1);
  Result<int64_t> min_total = at_min.aggregator->Total();
  ASSERT_TRUE(min_total.ok()) << min_total.status().message();
  EXPECT_EQ(*min_total, kMin);
}

TEST(AggregatorTest, TotalThatFitsIsExactEvenIfAPartialSumWouldOverflow) {
  FakeCluster cluster(3, /*in_process=*/true);
  cluster.shards[0]->set_count(kMax);
  cluster.shards[1]->set_count(1);
  cluster.shards[2]->set_count(-1);
  Result<int64_t> total = cluster.aggregator->Total();
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(*total, kMax);
}

TEST(AggregatorTest, TotalThatOverflowsInt64IsInternal) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(2, in_process);
    cluster.shards[0]->set_count(kMax);
    cluster.shards[1]->set_count(1);
    Result<int64_t> total = cluster.aggregator->Total();
    ASSERT_FALSE(total.ok()) << "gave " << *total;
    EXPECT_EQ(total.status().code(), Code::kInternal);
  }
}

TEST(AggregatorTest, TotalThatUnderflowsInt64IsInternal) {
  FakeCluster cluster(3, /*in_process=*/false);
  cluster.shards[0]->set_count(kMin);
  cluster.shards[1]->set_count(0);
  cluster.shards[2]->set_count(-1);
  Result<int64_t> total = cluster.aggregator->Total();
  ASSERT_FALSE(total.ok()) << "gave " << *total;
  EXPECT_EQ(total.status().code(), Code::kInternal);
}

TEST(AggregatorTest, OneFailingShardFailsTheWholeTotal) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(3, in_process);
    cluster.shards[0]->set_count(5);
    cluster.shards[2]->set_count(7);
    cluster.shards[1]->FailWith(Code::kUnavailable);
    Result<int64_t> total = cluster.aggregator->Total();
    ASSERT_FALSE(total.ok()) << "gave a partial total " << *total;
    EXPECT_EQ(total.status().code(), Code::kUnavailable);
    EXPECT_NE(total.status().message().find("fake shard 1: failed on purpose"), std::string::npos)
        << total.status().message();
  }
}

TEST(AggregatorTest, SeveralFailingShardsAreAllNamedWithTheFirstFailuresCode) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(4, in_process);
    cluster.shards[1]->FailWith(Code::kTimeout);
    cluster.shards[3]->FailWith(Code::kUnavailable);
    Result<int64_t> total = cluster.aggregator->Total();
    ASSERT_FALSE(total.ok()) << "gave a partial total " << *total;
    EXPECT_EQ(total.status().code(), Code::kTimeout);
    const std::string& message = total.status().message();
    EXPECT_NE(message.find("fake shard 1"), std::string::npos) << message;
    EXPECT_NE(message.find("fake shard 3"), std::string::npos) << message;
    EXPECT_EQ(message.find("fake shard 0"), std::string::npos) << message;
    EXPECT_EQ(message.find("fake shard 2"), std::string::npos) << message;
  }
}

TEST(AggregatorTest, EveryShardFailingNamesThemAll) {
  FakeCluster cluster(3, /*in_process=*/false);
  for (FakeShardClient* shard : cluster.shards) shard->FailWith(Code::kUnavailable);
  Result<int64_t> total = cluster.aggregator->Total();
  ASSERT_FALSE(total.ok());
  EXPECT_EQ(total.status().code(), Code::kUnavailable);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(total.status().message().find("fake shard " + std::to_string(i)), std::string::npos)
        << total.status().message();
  }
}

TEST(AggregatorTest, FailureWinsOverAnOverflowingSum) {
  FakeCluster cluster(3, /*in_process=*/true);
  cluster.shards[0]->set_count(kMax);
  cluster.shards[1]->set_count(kMax);
  cluster.shards[2]->FailWith(Code::kUnavailable);
  Result<int64_t> total = cluster.aggregator->Total();
  ASSERT_FALSE(total.ok());
  EXPECT_EQ(total.status().code(), Code::kUnavailable);
}

TEST(AggregatorTest, InProcessShardsAreAskedOnTheCallingThread) {
  FakeCluster cluster(3, /*in_process=*/true);
  ASSERT_TRUE(cluster.aggregator->Total().ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(cluster.shards[i]->count_threads(),
              std::vector<std::thread::id>{std::this_thread::get_id()})
        << "shard " << i;
  }
}

TEST(AggregatorTest, RemoteShardsAreAskedInParallel) {
  constexpr int kShards = 3;
  FakeCluster cluster(kShards, /*in_process=*/false);
  // Each Count waits until all of them have started: only parallel calls meet.
  Rendezvous rendezvous(kShards);
  for (int i = 0; i < kShards; ++i) {
    cluster.shards[i]->set_count(i + 1);
    cluster.shards[i]->set_rendezvous(&rendezvous);
  }
  Result<int64_t> total = cluster.aggregator->Total();
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(*total, 6);
  for (int i = 0; i < kShards; ++i) {
    EXPECT_TRUE(cluster.shards[i]->met_everyone()) << "shard " << i << " was asked alone";
  }
}

TEST(AggregatorTest, OneRemoteShardAmongInProcessOnesGivesTheSameTotal) {
  std::vector<std::unique_ptr<ShardClient>> clients;
  std::vector<FakeShardClient*> shards;
  for (int i = 0; i < 3; ++i) {
    auto fake = std::make_unique<FakeShardClient>(i, /*in_process=*/i != 1);
    fake->set_count(10 * (i + 1));
    shards.push_back(fake.get());
    clients.push_back(std::move(fake));
  }
  Aggregator aggregator(std::move(clients));
  Result<int64_t> total = aggregator.Total();
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(*total, 60);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(shards[i]->count_threads().size(), 1u) << "shard " << i;
}

// --- Over real in-process shards -------------------------------------------

TEST(AggregatorTest, ConcurrentIncrementsOverLocalShardsAddUpExactly) {
  constexpr int kShards = 3;
  constexpr int kThreads = 4;
  constexpr int kIncrementsPerThread = 3000;
  std::vector<std::unique_ptr<Shard>> shards;
  std::vector<std::unique_ptr<ShardClient>> clients;
  for (int i = 0; i < kShards; ++i) {
    shards.push_back(std::make_unique<Shard>(i));
    clients.push_back(std::make_unique<LocalShardClient>(*shards.back()));
  }
  Aggregator aggregator(std::move(clients));

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&aggregator] {
      // Values -1, 0, 1, 2 in turn: a net +2 every four increments.
      for (int i = 0; i < kIncrementsPerThread; ++i) {
        EXPECT_TRUE(aggregator.Increment(i % 4 - 1).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  Result<int64_t> total = aggregator.Total();
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(*total, int64_t{kThreads} * (kIncrementsPerThread / 4) * 2);
  // -1 and 2 go to shard 2, 0 to shard 0, 1 to shard 1.
  EXPECT_EQ(shards[0]->Count(), 0);
  EXPECT_EQ(shards[1]->Count(), int64_t{kThreads} * (kIncrementsPerThread / 4));
  EXPECT_EQ(shards[2]->Count(), int64_t{kThreads} * (kIncrementsPerThread / 4));
}

}  // namespace
}  // namespace shardctl::core
