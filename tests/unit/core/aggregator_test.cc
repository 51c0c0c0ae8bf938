#include "core/aggregator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

#include "core/router.h"
#include "core/shard.h"
#include "core/shard_client.h"
#include "core/status.h"
#include "core/total_table.h"

namespace shardctl::core {
namespace {

using test::KeyedRequest;
using test::kMax;
using test::kMin;
using test::Plain;
using test::Request;
using test::Windowed;
using ::testing::HasSubstr;

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

// A hand-written ShardClient whose counts, failures and locality a test sets,
// and which records how it was called. Thread-safe.
class FakeShardClient : public ShardClient {
 public:
  FakeShardClient(int id, bool in_process) : id_(id), in_process_(in_process) {}

  // Sets this shard's part of the default counter.
  void set_count(int64_t count) { set_part(CounterRef{}, count); }
  // Sets this shard's part of `counter`.
  void set_part(const CounterRef& counter, int64_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    parts_[{counter.name, counter.window}] = count;
  }
  // Sets the window end that replies about windowed counters carry.
  void set_window_end(int64_t window_end) {
    std::lock_guard<std::mutex> lock(mutex_);
    window_end_ = window_end;
  }
  // Makes every later call fail with `code` and a message naming this shard.
  void FailWith(Code code) {
    std::lock_guard<std::mutex> lock(mutex_);
    failure_ = Status(code, Describe() + ": failed on purpose");
  }
  // Makes later calls succeed again.
  void Recover() {
    std::lock_guard<std::mutex> lock(mutex_);
    failure_.reset();
  }
  // REQUIRES: called before the client is shared between threads.
  void set_rendezvous(Rendezvous* rendezvous) { rendezvous_ = rendezvous; }

  // This shard's part of `counter`, as the fake holds it now.
  int64_t part(const CounterRef& counter) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = parts_.find({counter.name, counter.window});
    return it == parts_.end() ? 0 : it->second;
  }
  std::vector<IncrementRequest> increment_requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return increments_;
  }
  // The values of increment_requests().
  std::vector<int64_t> increments() const {
    std::vector<int64_t> values;
    for (const IncrementRequest& request : increment_requests()) values.push_back(request.value);
    return values;
  }
  std::vector<CounterRef> counted() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return counted_;
  }
  std::vector<std::string> listed_prefixes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return listed_prefixes_;
  }
  std::vector<std::string> reset_names() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return reset_names_;
  }
  std::vector<std::thread::id> count_threads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return count_threads_;
  }
  bool met_everyone() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return met_everyone_;
  }

  Result<IncrementReply> Increment(const IncrementRequest& request) override {
    std::lock_guard<std::mutex> lock(mutex_);
    increments_.push_back(request);
    if (failure_) return *failure_;
    int64_t& count = parts_[{request.counter.name, request.counter.window}];
    count += request.value;
    return IncrementReply{id_, count, request.counter.window > 0 ? window_end_ : 0};
  }

  // Applies the share as a whole (all or, failing, nothing), as a Shard does.
  Result<ManyReply> IncrementMany(const ManyRequest& request) override {
    std::lock_guard<std::mutex> lock(mutex_);
    many_requests_.push_back(request);
    if (failure_) return *failure_;
    for (const ManyRequest::Item& item : request.items) {
      parts_[{item.counter, request.window}] += item.value;
    }
    return ManyReply{id_, static_cast<int64_t>(request.items.size()),
                     request.window > 0 ? window_end_ : 0};
  }
  std::vector<ManyRequest> many_requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return many_requests_;
  }
  Result<CountReply> Count(const CounterRef& counter) override {
    if (rendezvous_ != nullptr) {
      bool met = rendezvous_->ArriveAndWait();
      std::lock_guard<std::mutex> lock(mutex_);
      met_everyone_ = met;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    count_threads_.push_back(std::this_thread::get_id());
    counted_.push_back(counter);
    if (failure_) return *failure_;
    auto it = parts_.find({counter.name, counter.window});
    return CountReply{id_, it == parts_.end() ? 0 : it->second,
                      counter.window > 0 ? window_end_ : 0};
  }

  Result<std::vector<CounterPart>> List(const std::string& prefix) override {
    std::lock_guard<std::mutex> lock(mutex_);
    listed_prefixes_.push_back(prefix);
    if (failure_) return *failure_;
    // Plain counters only, in reverse name order: the aggregator must sort.
    std::vector<CounterPart> parts;
    for (auto it = parts_.rbegin(); it != parts_.rend(); ++it) {
      const auto& [name, window] = it->first;
      if (window == 0 && name.starts_with(prefix)) parts.push_back({name, it->second});
    }
    return parts;
  }

  Result<int64_t> Reset(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mutex_);
    reset_names_.push_back(name);
    if (failure_) return *failure_;
    int64_t removed = 0;
    std::erase_if(parts_, [&](const auto& entry) {
      if (entry.first.first != name) return false;
      if (entry.first.second == 0) removed = entry.second;
      return true;
    });
    return removed;
  }

  std::string Describe() const override { return "fake shard " + std::to_string(id_); }
  std::string Address() const override { return "fake://" + std::to_string(id_); }
  bool InProcess() const override { return in_process_; }

 private:
  const int id_;
  const bool in_process_;
  Rendezvous* rendezvous_ = nullptr;
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int64_t>, int64_t> parts_;  // by (name, window)
  int64_t window_end_ = 0;
  std::optional<Status> failure_;
  std::vector<IncrementRequest> increments_;
  std::vector<ManyRequest> many_requests_;
  std::vector<CounterRef> counted_;
  std::vector<std::string> listed_prefixes_;
  std::vector<std::string> reset_names_;
  std::vector<std::thread::id> count_threads_;
  bool met_everyone_ = false;
};

// Builds an Aggregator over `n` fakes and keeps pointers to them for the test.
struct FakeCluster {
  FakeCluster(int n, bool in_process, AggregatorOptions options = {}) {
    std::vector<std::unique_ptr<ShardClient>> clients;
    for (int i = 0; i < n; ++i) {
      auto fake = std::make_unique<FakeShardClient>(i, in_process);
      shards.push_back(fake.get());
      clients.push_back(std::move(fake));
    }
    aggregator.emplace(std::move(clients), std::move(options));
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
    Result<IncrementReply> reply = cluster.aggregator->Increment(Request(value));
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
  Result<IncrementReply> reply = cluster.aggregator->Increment(Request(-1));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->shard_id, 2);
  EXPECT_EQ(cluster.shards[2]->increments(), std::vector<int64_t>{-1});
  EXPECT_TRUE(cluster.shards[0]->increments().empty());
  EXPECT_TRUE(cluster.shards[1]->increments().empty());
}

TEST(AggregatorTest, IncrementReturnsTheShardsReply) {
  FakeCluster cluster(2, /*in_process=*/true);
  cluster.shards[1]->set_count(10);
  Result<IncrementReply> reply = cluster.aggregator->Increment(Request(5));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (IncrementReply{1, 15, 0}));
}

TEST(AggregatorTest, IncrementPassesTheShardsFailureThrough) {
  for (Code code : {Code::kUnavailable, Code::kTimeout, Code::kOutOfRange, Code::kBadGateway}) {
    SCOPED_TRACE(testing::Message() << "code " << CodeName(code));
    FakeCluster cluster(2, /*in_process=*/false);
    cluster.shards[0]->FailWith(code);
    Result<IncrementReply> reply = cluster.aggregator->Increment(Request(4));
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), code);
    EXPECT_EQ(reply.status().message(), "fake shard 0: failed on purpose");
  }
}

TEST(AggregatorTest, FailingShardDoesNotAffectIncrementsRoutedElsewhere) {
  FakeCluster cluster(2, /*in_process=*/false);
  cluster.shards[0]->FailWith(Code::kUnavailable);
  Result<IncrementReply> reply = cluster.aggregator->Increment(Request(3));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (IncrementReply{1, 3, 0}));
}

TEST(AggregatorTest, IncrementPassesTheCounterToTheOwningShard) {
  FakeCluster cluster(3, /*in_process=*/true);
  cluster.shards[1]->set_window_end(120);
  const CounterRef api = Windowed("api:c42", 60);
  Result<IncrementReply> reply = cluster.aggregator->Increment(Request(4, api));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (IncrementReply{1, 4, 120}));
  ASSERT_EQ(cluster.shards[1]->increment_requests().size(), 1u);
  EXPECT_EQ(cluster.shards[1]->increment_requests()[0].counter, api);
  EXPECT_EQ(cluster.shards[1]->part(api), 4);
  EXPECT_EQ(cluster.shards[1]->part(Plain("api:c42")), 0);
}

TEST(AggregatorTest, IncrementRoutesByValueWhateverTheCounter) {
  FakeCluster cluster(3, /*in_process=*/true);
  for (const char* name : {"a", "b", "default", "api:c42"}) {
    Result<IncrementReply> reply = cluster.aggregator->Increment(Request(5, Plain(name)));
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    EXPECT_EQ(reply->shard_id, 2) << name;
  }
  EXPECT_EQ(cluster.shards[2]->increments().size(), 4u);
  EXPECT_TRUE(cluster.shards[0]->increments().empty());
  EXPECT_TRUE(cluster.shards[1]->increments().empty());
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
    Result<TotalReply> total = cluster.aggregator->Total(CounterRef{});
    ASSERT_TRUE(total.ok()) << total.status().message();
    EXPECT_EQ(total->total, 107);
  }
}

TEST(AggregatorTest, TotalOfFreshShardsIsZero) {
  FakeCluster cluster(3, /*in_process=*/false);
  Result<TotalReply> total = cluster.aggregator->Total(CounterRef{});
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(total->total, 0);
}

TEST(AggregatorTest, TotalAsksEveryShardExactlyOnce) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(5, in_process);
    ASSERT_TRUE(cluster.aggregator->Total(CounterRef{}).ok());
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(cluster.shards[i]->count_threads().size(), 1u) << "shard " << i;
    }
  }
}

TEST(AggregatorTest, TotalReachesInt64LimitsExactly) {
  FakeCluster at_max(2, /*in_process=*/true);
  at_max.shards[0]->set_count(kMax - 1);
  at_max.shards[1]->set_count(1);
  Result<TotalReply> max_total = at_max.aggregator->Total(CounterRef{});
  ASSERT_TRUE(max_total.ok()) << max_total.status().message();
  EXPECT_EQ(max_total->total, kMax);

  FakeCluster at_min(2, /*in_process=*/true);
  at_min.shards[0]->set_count(kMin + 1);
  at_min.shards[1]->set_count(-1);
  Result<TotalReply> min_total = at_min.aggregator->Total(CounterRef{});
  ASSERT_TRUE(min_total.ok()) << min_total.status().message();
  EXPECT_EQ(min_total->total, kMin);
}

TEST(AggregatorTest, TotalThatFitsIsExactEvenIfAPartialSumWouldOverflow) {
  FakeCluster cluster(3, /*in_process=*/true);
  cluster.shards[0]->set_count(kMax);
  cluster.shards[1]->set_count(1);
  cluster.shards[2]->set_count(-1);
  Result<TotalReply> total = cluster.aggregator->Total(CounterRef{});
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(total->total, kMax);
}

TEST(AggregatorTest, TotalThatOverflowsInt64IsInternal) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(2, in_process);
    cluster.shards[0]->set_count(kMax);
    cluster.shards[1]->set_count(1);
    Result<TotalReply> total = cluster.aggregator->Total(CounterRef{});
    ASSERT_FALSE(total.ok()) << "gave " << total->total;
    EXPECT_EQ(total.status().code(), Code::kInternal);
  }
}

TEST(AggregatorTest, TotalThatUnderflowsInt64IsInternal) {
  FakeCluster cluster(3, /*in_process=*/false);
  cluster.shards[0]->set_count(kMin);
  cluster.shards[1]->set_count(0);
  cluster.shards[2]->set_count(-1);
  Result<TotalReply> total = cluster.aggregator->Total(CounterRef{});
  ASSERT_FALSE(total.ok()) << "gave " << total->total;
  EXPECT_EQ(total.status().code(), Code::kInternal);
}

TEST(AggregatorTest, OneFailingShardFailsTheWholeTotal) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(3, in_process);
    cluster.shards[0]->set_count(5);
    cluster.shards[2]->set_count(7);
    cluster.shards[1]->FailWith(Code::kUnavailable);
    Result<TotalReply> total = cluster.aggregator->Total(CounterRef{});
    ASSERT_FALSE(total.ok()) << "gave a partial total " << total->total;
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
    Result<TotalReply> total = cluster.aggregator->Total(CounterRef{});
    ASSERT_FALSE(total.ok()) << "gave a partial total " << total->total;
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
  Result<TotalReply> total = cluster.aggregator->Total(CounterRef{});
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
  Result<TotalReply> total = cluster.aggregator->Total(CounterRef{});
  ASSERT_FALSE(total.ok());
  EXPECT_EQ(total.status().code(), Code::kUnavailable);
}

TEST(AggregatorTest, InProcessShardsAreAskedOnTheCallingThread) {
  FakeCluster cluster(3, /*in_process=*/true);
  ASSERT_TRUE(cluster.aggregator->Total(CounterRef{}).ok());
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
  Result<TotalReply> total = cluster.aggregator->Total(CounterRef{});
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(total->total, 6);
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
  Result<TotalReply> total = aggregator.Total(CounterRef{});
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(total->total, 60);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(shards[i]->count_threads().size(), 1u) << "shard " << i;
}

// --- Total of named and windowed counters ----------------------------------

TEST(AggregatorTest, TotalOfANamedCounterSumsItsPartsAndReturnsThemInShardOrder) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(4, in_process);
    const CounterRef pageviews = Plain("pageviews");
    cluster.shards[0]->set_part(pageviews, 10);
    cluster.shards[1]->set_part(pageviews, -3);
    cluster.shards[3]->set_part(pageviews, 100);
    // Other counters on the same shards do not count.
    cluster.shards[2]->set_part(Plain("other"), 1000);
    cluster.shards[0]->set_count(5000);
    cluster.shards[1]->set_part(Windowed("pageviews", 60), 7);

    Result<TotalReply> total = cluster.aggregator->Total(pageviews);
    ASSERT_TRUE(total.ok()) << total.status().message();
    EXPECT_EQ(total->total, 107);
    EXPECT_EQ(total->parts, (std::vector<int64_t>{10, -3, 0, 100}));
    EXPECT_EQ(total->window_end, 0);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(cluster.shards[i]->counted(), std::vector<CounterRef>{pageviews}) << "shard " << i;
    }
  }
}

TEST(AggregatorTest, TotalOfTheDefaultCounterHasEveryShardsPart) {
  FakeCluster cluster(3, /*in_process=*/false);
  cluster.shards[0]->set_count(1);
  cluster.shards[2]->set_count(2);
  Result<TotalReply> total = cluster.aggregator->Total(CounterRef{});
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(total->total, 3);
  EXPECT_EQ(total->parts, (std::vector<int64_t>{1, 0, 2}));
}

TEST(AggregatorTest, TotalOfAWindowedCounterCarriesTheWindowEnd) {
  FakeCluster cluster(2, /*in_process=*/true);
  const CounterRef api = Windowed("api", 60);
  cluster.shards[0]->set_part(api, 2);
  cluster.shards[1]->set_part(api, 3);
  cluster.shards[0]->set_window_end(120);
  cluster.shards[1]->set_window_end(120);
  Result<TotalReply> total = cluster.aggregator->Total(api);
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(total->total, 5);
  EXPECT_EQ(total->parts, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(total->window_end, 120);
}

TEST(AggregatorTest, FailingShardFailsTheTotalOfANamedCounterNamingIt) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(3, in_process);
    cluster.shards[0]->set_part(Plain("a"), 5);
    cluster.shards[2]->FailWith(Code::kTimeout);
    Result<TotalReply> total = cluster.aggregator->Total(Plain("a"));
    ASSERT_FALSE(total.ok()) << "gave a partial total " << total->total;
    EXPECT_EQ(total.status().code(), Code::kTimeout);
    EXPECT_NE(total.status().message().find("fake shard 2: failed on purpose"), std::string::npos)
        << total.status().message();
  }
}

// --- List ------------------------------------------------------------------

// Names of a listing, in its order.
std::vector<std::string> NamesOf(const CounterList& list) {
  std::vector<std::string> names;
  for (const CounterTotal& counter : list.counters) names.push_back(counter.name);
  return names;
}

ListQuery Paged(int limit, std::string after = "", std::string prefix = "") {
  ListQuery query;
  query.limit = limit;
  query.after = std::move(after);
  query.prefix = std::move(prefix);
  return query;
}

ListQuery Top(int top, std::string prefix = "") {
  ListQuery query;
  query.top = top;
  query.prefix = std::move(prefix);
  return query;
}

TEST(AggregatorTest, ListSumsANameSpreadOverSeveralShardsSortedByName) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(3, in_process);
    cluster.shards[0]->set_part(Plain("b"), 2);
    cluster.shards[0]->set_part(Plain("a"), 1);
    cluster.shards[1]->set_part(Plain("b"), 3);
    cluster.shards[2]->set_part(Plain("b"), -10);
    cluster.shards[2]->set_part(Plain("c"), 4);
    Result<CounterList> list = cluster.aggregator->List(ListQuery{});
    ASSERT_TRUE(list.ok()) << list.status().message();
    EXPECT_EQ(list->counters, (std::vector<CounterTotal>{{"a", 1}, {"b", -5}, {"c", 4}}));
    EXPECT_EQ(list->next, "");
  }
}

TEST(AggregatorTest, ListOfFreshShardsIsEmpty) {
  FakeCluster cluster(2, /*in_process=*/false);
  Result<CounterList> list = cluster.aggregator->List(ListQuery{});
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_TRUE(list->counters.empty());
  EXPECT_EQ(list->next, "");
}

TEST(AggregatorTest, ListPassesThePrefixToEveryShard) {
  FakeCluster cluster(3, /*in_process=*/true);
  cluster.shards[0]->set_part(Plain("api:a"), 1);
  cluster.shards[1]->set_part(Plain("api:b"), 2);
  cluster.shards[1]->set_part(Plain("web:a"), 4);
  cluster.shards[2]->set_part(Plain("apx"), 8);
  Result<CounterList> list = cluster.aggregator->List(Paged(1000, "", "api:"));
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(list->counters, (std::vector<CounterTotal>{{"api:a", 1}, {"api:b", 2}}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(cluster.shards[i]->listed_prefixes(), std::vector<std::string>{"api:"})
        << "shard " << i;
  }
}

TEST(AggregatorTest, ListTopOrdersByTotalDescendingThenByName) {
  FakeCluster cluster(2, /*in_process=*/true);
  cluster.shards[0]->set_part(Plain("a"), 5);
  cluster.shards[0]->set_part(Plain("b"), 3);
  cluster.shards[1]->set_part(Plain("b"), 4);  // b: 7
  cluster.shards[1]->set_part(Plain("c"), 5);
  cluster.shards[0]->set_part(Plain("d"), -1);
  cluster.shards[1]->set_part(Plain("e"), 7);

  Result<CounterList> top3 = cluster.aggregator->List(Top(3));
  ASSERT_TRUE(top3.ok()) << top3.status().message();
  EXPECT_EQ(top3->counters, (std::vector<CounterTotal>{{"b", 7}, {"e", 7}, {"a", 5}}));
  EXPECT_EQ(top3->next, "");

  Result<CounterList> all = cluster.aggregator->List(Top(10));
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->counters,
            (std::vector<CounterTotal>{{"b", 7}, {"e", 7}, {"a", 5}, {"c", 5}, {"d", -1}}));
  EXPECT_EQ(all->next, "");
}

TEST(AggregatorTest, ListTopOneIsTheHighestTotal) {
  FakeCluster cluster(3, /*in_process=*/false);
  cluster.shards[0]->set_part(Plain("small"), 100);
  cluster.shards[1]->set_part(Plain("big"), 60);
  cluster.shards[2]->set_part(Plain("big"), 60);
  Result<CounterList> top = cluster.aggregator->List(Top(1));
  ASSERT_TRUE(top.ok()) << top.status().message();
  EXPECT_EQ(top->counters, (std::vector<CounterTotal>{{"big", 120}}));
}

TEST(AggregatorTest, ListTopKeepsToThePrefix) {
  FakeCluster cluster(2, /*in_process=*/true);
  cluster.shards[0]->set_part(Plain("api:a"), 1);
  cluster.shards[1]->set_part(Plain("api:b"), 2);
  cluster.shards[1]->set_part(Plain("web"), 100);
  Result<CounterList> top = cluster.aggregator->List(Top(5, "api:"));
  ASSERT_TRUE(top.ok()) << top.status().message();
  EXPECT_EQ(top->counters, (std::vector<CounterTotal>{{"api:b", 2}, {"api:a", 1}}));
}

TEST(AggregatorTest, ListPagesByNameAndSetsNextOnlyWhenMoreFollow) {
  FakeCluster cluster(2, /*in_process=*/true);
  for (const char* name : {"e", "d", "c", "b", "a"}) cluster.shards[0]->set_part(Plain(name), 1);
  cluster.shards[1]->set_part(Plain("c"), 1);

  Result<CounterList> first = cluster.aggregator->List(Paged(2));
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->counters, (std::vector<CounterTotal>{{"a", 1}, {"b", 1}}));
  EXPECT_EQ(first->next, "b");

  Result<CounterList> second = cluster.aggregator->List(Paged(2, "b"));
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->counters, (std::vector<CounterTotal>{{"c", 2}, {"d", 1}}));
  EXPECT_EQ(second->next, "d");

  Result<CounterList> last = cluster.aggregator->List(Paged(2, "d"));
  ASSERT_TRUE(last.ok()) << last.status().message();
  EXPECT_EQ(last->counters, (std::vector<CounterTotal>{{"e", 1}}));
  EXPECT_EQ(last->next, "");
}

TEST(AggregatorTest, ListPageThatEndsExactlyAtTheLastNameHasNoNext) {
  FakeCluster cluster(2, /*in_process=*/false);
  for (const char* name : {"a", "b", "c"}) cluster.shards[1]->set_part(Plain(name), 1);
  Result<CounterList> whole = cluster.aggregator->List(Paged(3));
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  EXPECT_EQ(NamesOf(*whole), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(whole->next, "");

  Result<CounterList> rest = cluster.aggregator->List(Paged(2, "a"));
  ASSERT_TRUE(rest.ok()) << rest.status().message();
  EXPECT_EQ(NamesOf(*rest), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(rest->next, "");
}

TEST(AggregatorTest, ListAfterTheLastNameIsEmpty) {
  FakeCluster cluster(2, /*in_process=*/true);
  cluster.shards[0]->set_part(Plain("a"), 1);
  Result<CounterList> list = cluster.aggregator->List(Paged(10, "a"));
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_TRUE(list->counters.empty());
  EXPECT_EQ(list->next, "");
}

TEST(AggregatorTest, ListAfterANameThatIsNotACounterStartsAtTheNextName) {
  FakeCluster cluster(2, /*in_process=*/true);
  for (const char* name : {"a", "b", "c"}) cluster.shards[0]->set_part(Plain(name), 1);
  Result<CounterList> list = cluster.aggregator->List(Paged(10, "b0"));
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(NamesOf(*list), std::vector<std::string>{"c"});
}

TEST(AggregatorTest, WalkingPagesWithNextVisitsEveryCounterOnce) {
  constexpr int kShards = 3;
  constexpr int kNames = 23;
  FakeCluster cluster(kShards, /*in_process=*/false);
  std::vector<std::string> expected;
  for (int i = 0; i < kNames; ++i) {
    std::string name = "n" + std::to_string(100 + i);
    expected.push_back(name);
    // Every name lives on one or two shards.
    cluster.shards[i % kShards]->set_part(Plain(name), i);
    if (i % 2 == 0) cluster.shards[(i + 1) % kShards]->set_part(Plain(name), 1);
  }
  // A counter outside the prefix is never visited.
  cluster.shards[0]->set_part(Plain("other"), 1);

  for (int limit : {1, 2, 4, 22, 23, 24}) {
    SCOPED_TRACE(testing::Message() << "limit " << limit);
    std::vector<std::string> visited;
    std::string after;
    int pages = 0;
    do {
      Result<CounterList> page = cluster.aggregator->List(Paged(limit, after, "n"));
      ASSERT_TRUE(page.ok()) << page.status().message();
      ASSERT_LE(page->counters.size(), static_cast<size_t>(limit));
      for (const CounterTotal& counter : page->counters) {
        int i = std::stoi(counter.name.substr(1)) - 100;
        EXPECT_EQ(counter.total, i + (i % 2 == 0 ? 1 : 0)) << counter.name;
        visited.push_back(counter.name);
      }
      after = page->next;
      ASSERT_LE(++pages, kNames + 1) << "paging does not end";
    } while (!after.empty());
    EXPECT_EQ(visited, expected);
    EXPECT_EQ(pages, (kNames + limit - 1) / limit);
  }
}

TEST(AggregatorTest, ListTotalThatOverflowsInt64IsInternal) {
  FakeCluster cluster(2, /*in_process=*/true);
  cluster.shards[0]->set_part(Plain("huge"), kMax);
  cluster.shards[1]->set_part(Plain("huge"), 1);
  Result<CounterList> list = cluster.aggregator->List(ListQuery{});
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), Code::kInternal);
  EXPECT_NE(list.status().message().find("huge"), std::string::npos) << list.status().message();
}

TEST(AggregatorTest, ListTotalThatFitsIsExactEvenIfAPartialSumWouldOverflow) {
  FakeCluster cluster(3, /*in_process=*/true);
  cluster.shards[0]->set_part(Plain("edge"), kMax);
  cluster.shards[1]->set_part(Plain("edge"), kMax);
  cluster.shards[2]->set_part(Plain("edge"), kMin);
  Result<CounterList> list = cluster.aggregator->List(ListQuery{});
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(list->counters, (std::vector<CounterTotal>{{"edge", kMax - 1}}));
}

TEST(AggregatorTest, OneFailingShardFailsTheListNamingIt) {
  for (bool in_process : {true, false}) {
    for (bool top : {false, true}) {
      SCOPED_TRACE(testing::Message()
                   << (in_process ? "in process" : "remote") << (top ? ", top" : ", paged"));
      FakeCluster cluster(3, in_process);
      cluster.shards[0]->set_part(Plain("a"), 1);
      cluster.shards[1]->FailWith(Code::kUnavailable);
      Result<CounterList> list = cluster.aggregator->List(top ? Top(5) : ListQuery{});
      ASSERT_FALSE(list.ok()) << "gave a partial listing of " << list->counters.size();
      EXPECT_EQ(list.status().code(), Code::kUnavailable);
      EXPECT_NE(list.status().message().find("fake shard 1: failed on purpose"), std::string::npos)
          << list.status().message();
      EXPECT_EQ(list.status().message().find("fake shard 0"), std::string::npos)
          << list.status().message();
    }
  }
}

TEST(AggregatorTest, SeveralFailingShardsFailTheListNamingThemAll) {
  FakeCluster cluster(3, /*in_process=*/false);
  cluster.shards[0]->FailWith(Code::kBadGateway);
  cluster.shards[2]->FailWith(Code::kTimeout);
  Result<CounterList> list = cluster.aggregator->List(ListQuery{});
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), Code::kBadGateway);
  EXPECT_NE(list.status().message().find("fake shard 0"), std::string::npos)
      << list.status().message();
  EXPECT_NE(list.status().message().find("fake shard 2"), std::string::npos)
      << list.status().message();
}

// --- Reset -----------------------------------------------------------------

TEST(AggregatorTest, ResetSumsThePartsRemovedFromEveryShard) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(3, in_process);
    cluster.shards[0]->set_part(Plain("gone"), 5);
    cluster.shards[1]->set_part(Plain("gone"), -2);
    cluster.shards[1]->set_part(Windowed("gone", 60), 9);
    cluster.shards[2]->set_part(Plain("kept"), 4);
    Result<int64_t> removed = cluster.aggregator->Reset("gone");
    ASSERT_TRUE(removed.ok()) << removed.status().message();
    EXPECT_EQ(*removed, 3);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(cluster.shards[i]->reset_names(), std::vector<std::string>{"gone"})
          << "shard " << i;
      EXPECT_EQ(cluster.shards[i]->part(Plain("gone")), 0) << "shard " << i;
    }
    EXPECT_EQ(cluster.shards[1]->part(Windowed("gone", 60)), 0);
    EXPECT_EQ(cluster.shards[2]->part(Plain("kept")), 4);
  }
}

TEST(AggregatorTest, ResetOfACounterNoShardHasRemovesZero) {
  FakeCluster cluster(2, /*in_process=*/true);
  Result<int64_t> removed = cluster.aggregator->Reset("never");
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 0);
}

TEST(AggregatorTest, ResetWhoseSumOverflowsInt64IsInternal) {
  FakeCluster cluster(2, /*in_process=*/true);
  cluster.shards[0]->set_part(Plain("huge"), kMin);
  cluster.shards[1]->set_part(Plain("huge"), -1);
  Result<int64_t> removed = cluster.aggregator->Reset("huge");
  ASSERT_FALSE(removed.ok()) << "gave " << *removed;
  EXPECT_EQ(removed.status().code(), Code::kInternal);
}

TEST(AggregatorTest, FailingShardFailsTheResetNamingItWhileTheOthersStillReset) {
  for (bool in_process : {true, false}) {
    SCOPED_TRACE(in_process ? "in process" : "remote");
    FakeCluster cluster(3, in_process);
    for (FakeShardClient* shard : cluster.shards) shard->set_part(Plain("gone"), 1);
    cluster.shards[1]->FailWith(Code::kUnavailable);
    Result<int64_t> removed = cluster.aggregator->Reset("gone");
    ASSERT_FALSE(removed.ok()) << "gave " << *removed;
    EXPECT_EQ(removed.status().code(), Code::kUnavailable);
    EXPECT_NE(removed.status().message().find("fake shard 1: failed on purpose"), std::string::npos)
        << removed.status().message();
    // The header promises the others have still removed their parts.
    EXPECT_EQ(cluster.shards[0]->part(Plain("gone")), 0);
    EXPECT_EQ(cluster.shards[2]->part(Plain("gone")), 0);
    EXPECT_EQ(cluster.shards[1]->part(Plain("gone")), 1);
  }
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
        EXPECT_TRUE(aggregator.Increment(Request(i % 4 - 1)).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  Result<TotalReply> total = aggregator.Total(CounterRef{});
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(total->total, int64_t{kThreads} * (kIncrementsPerThread / 4) * 2);
  // -1 and 2 go to shard 2, 0 to shard 0, 1 to shard 1.
  EXPECT_EQ(shards[0]->Count(CounterRef{}).count, 0);
  EXPECT_EQ(shards[1]->Count(CounterRef{}).count, int64_t{kThreads} * (kIncrementsPerThread / 4));
  EXPECT_EQ(shards[2]->Count(CounterRef{}).count, int64_t{kThreads} * (kIncrementsPerThread / 4));
}

TEST(AggregatorTest, NamedAndWindowedCountersOverLocalShardsTotalListAndReset) {
  constexpr int kShards = 3;
  int64_t now = 130;
  std::vector<std::unique_ptr<Shard>> shards;
  std::vector<std::unique_ptr<ShardClient>> clients;
  for (int i = 0; i < kShards; ++i) {
    shards.push_back(std::make_unique<Shard>(i, [&now] { return now; }));
    clients.push_back(std::make_unique<LocalShardClient>(*shards.back()));
  }
  Aggregator aggregator(std::move(clients));

  // Values 1..6 land on shards 1, 2, 0, 1, 2, 0.
  for (int64_t value = 1; value <= 6; ++value) {
    ASSERT_TRUE(aggregator.Increment(Request(value, Plain("pageviews"))).ok());
    ASSERT_TRUE(aggregator.Increment(Request(value, Windowed("pageviews", 60))).ok());
  }
  ASSERT_TRUE(aggregator.Increment(Request(100, Plain("api:c42"))).ok());
  ASSERT_TRUE(aggregator.Increment(Request(2)).ok());

  Result<TotalReply> total = aggregator.Total(Plain("pageviews"));
  ASSERT_TRUE(total.ok()) << total.status().message();
  EXPECT_EQ(total->total, 21);
  EXPECT_EQ(total->parts, (std::vector<int64_t>{3 + 6, 1 + 4, 2 + 5}));

  Result<TotalReply> windowed = aggregator.Total(Windowed("pageviews", 60));
  ASSERT_TRUE(windowed.ok()) << windowed.status().message();
  EXPECT_EQ(windowed->total, 21);
  EXPECT_EQ(windowed->window_end, 180);

  Result<CounterList> list = aggregator.List(ListQuery{});
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(list->counters,
            (std::vector<CounterTotal>{{"api:c42", 100}, {"default", 2}, {"pageviews", 21}}));

  Result<CounterList> top = aggregator.List(Top(1));
  ASSERT_TRUE(top.ok()) << top.status().message();
  EXPECT_EQ(top->counters, (std::vector<CounterTotal>{{"api:c42", 100}}));

  now = 180;  // the window has ended
  Result<TotalReply> next_window = aggregator.Total(Windowed("pageviews", 60));
  ASSERT_TRUE(next_window.ok()) << next_window.status().message();
  EXPECT_EQ(next_window->total, 0);
  EXPECT_EQ(next_window->window_end, 240);

  Result<int64_t> removed = aggregator.Reset("pageviews");
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 21);
  Result<TotalReply> after_reset = aggregator.Total(Plain("pageviews"));
  ASSERT_TRUE(after_reset.ok()) << after_reset.status().message();
  EXPECT_EQ(after_reset->total, 0);
  size_t held = 0;
  for (const auto& shard : shards) held += shard->size();
  EXPECT_EQ(held, 2u);  // api:c42 and default
}

TEST(AggregatorTest, ConcurrentIncrementsOfSeveralNamesOverLocalShardsAddUpExactly) {
  constexpr int kShards = 3;
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  const std::vector<std::string> names = {"a", "b", "c", "api:c42"};
  std::vector<std::unique_ptr<Shard>> shards;
  std::vector<std::unique_ptr<ShardClient>> clients;
  for (int i = 0; i < kShards; ++i) {
    shards.push_back(std::make_unique<Shard>(i));
    clients.push_back(std::make_unique<LocalShardClient>(*shards.back()));
  }
  Aggregator aggregator(std::move(clients));

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&aggregator, &names] {
      for (int i = 0; i < kRounds; ++i) {
        for (const std::string& name : names) {
          EXPECT_TRUE(aggregator.Increment(Request(i % 3, Plain(name))).ok());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  // Round i adds i % 3 to every name (and so reaches every shard).
  int64_t per_thread = 0;
  for (int i = 0; i < kRounds; ++i) per_thread += i % 3;
  Result<CounterList> list = aggregator.List(ListQuery{});
  ASSERT_TRUE(list.ok()) << list.status().message();
  ASSERT_EQ(list->counters.size(), names.size());
  for (const CounterTotal& counter : list->counters) {
    EXPECT_EQ(counter.total, kThreads * per_thread) << counter.name;
  }
}

// --- Shard health, routing modes, partial totals -----------------------------

// The time a HealthCluster's aggregator reads; a base, so that it is set
// before the aggregator reads it in its constructor.
struct TestClock {
  int64_t now = 1000;
};

// A FakeCluster of remote shards whose aggregator reads a clock the test sets.
struct HealthCluster : TestClock, FakeCluster {
  explicit HealthCluster(int n, Routing routing = Routing::kValue)
      : FakeCluster(n, /*in_process=*/false, Options(routing, &now)) {}
  static AggregatorOptions Options(Routing routing, const int64_t* now) {
    AggregatorOptions options;
    options.routing = routing;
    options.now = [now] { return *now; };
    return options;
  }
  int64_t total_increments() const {
    int64_t sum = 0;
    for (const FakeShardClient* shard : shards) sum += shard->increments().size();
    return sum;
  }
};

TEST(AggregatorHealthTest, ShardThatRefusesIsMarkedDownAndThenSkippedWithoutBeingAsked) {
  HealthCluster cluster(3);
  cluster.shards[1]->FailWith(Code::kUnavailable);
  ASSERT_EQ(cluster.aggregator->Increment(Request(1)).status().code(), Code::kUnavailable);
  ASSERT_EQ(cluster.shards[1]->increments().size(), 1u);

  Result<IncrementReply> skipped = cluster.aggregator->Increment(Request(4));
  EXPECT_EQ(skipped.status().code(), Code::kUnavailable);
  EXPECT_NE(skipped.status().message().find("fake shard 1 is down"), std::string::npos)
      << skipped.status().message();
  EXPECT_NE(skipped.status().message().find("failed on purpose"), std::string::npos);
  EXPECT_EQ(cluster.shards[1]->increments().size(), 1u);  // not asked again
  EXPECT_TRUE(cluster.aggregator->Increment(Request(3)).ok());  // others still serve
}

TEST(AggregatorHealthTest, TimeoutMarksTheShardDownToo) {
  HealthCluster cluster(2);
  cluster.shards[0]->FailWith(Code::kTimeout);
  EXPECT_EQ(cluster.aggregator->Total(Plain("default")).status().code(), Code::kTimeout);
  cluster.shards[0]->Recover();
  EXPECT_EQ(cluster.aggregator->Total(Plain("default")).status().code(), Code::kUnavailable);
  EXPECT_EQ(cluster.shards[0]->counted().size(), 1u);
}

TEST(AggregatorHealthTest, ShardsOwnRefusalsDoNotMarkItDown) {
  for (Code code : {Code::kInvalidArgument, Code::kOutOfRange, Code::kBadGateway, Code::kInternal}) {
    HealthCluster cluster(2);
    cluster.shards[0]->FailWith(code);
    EXPECT_EQ(cluster.aggregator->Increment(Request(0)).status().code(), code);
    EXPECT_EQ(cluster.aggregator->Increment(Request(0)).status().code(), code);
    EXPECT_EQ(cluster.shards[0]->increments().size(), 2u);
    EXPECT_TRUE(cluster.aggregator->Shards()[0].up);
  }
}

TEST(AggregatorHealthTest, ProbeMarksUpAShardThatAnswersAgainAndItIsUsedAtOnce) {
  HealthCluster cluster(3);
  cluster.shards[2]->FailWith(Code::kUnavailable);
  cluster.now = 1010;
  ASSERT_FALSE(cluster.aggregator->Increment(Request(2)).ok());

  cluster.now = 1020;
  cluster.aggregator->ProbeDownShards();  // still failing: stays down
  EXPECT_FALSE(cluster.aggregator->Shards()[2].up);
  EXPECT_EQ(cluster.aggregator->Shards()[2].since, 1010);

  cluster.shards[2]->Recover();
  cluster.now = 1030;
  cluster.aggregator->ProbeDownShards();
  Result<IncrementReply> reply = cluster.aggregator->Increment(Request(2));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->shard_id, 2);
  ShardState state = cluster.aggregator->Shards()[2];
  EXPECT_TRUE(state.up);
  EXPECT_EQ(state.since, 1030);
}

TEST(AggregatorHealthTest, ProbeAsksOnlyShardsThatAreDown) {
  HealthCluster cluster(2);
  cluster.aggregator->ProbeDownShards();
  EXPECT_TRUE(cluster.shards[0]->counted().empty());
  EXPECT_TRUE(cluster.shards[1]->counted().empty());
}

TEST(AggregatorHealthTest, ShardsListsAddressStateSinceLastErrorAndCount) {
  HealthCluster cluster(2);
  cluster.shards[0]->set_count(7);
  cluster.shards[1]->FailWith(Code::kUnavailable);
  cluster.now = 1005;
  std::vector<ShardState> states = cluster.aggregator->Shards();
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[0].id, 0);
  EXPECT_EQ(states[0].address, "fake://0");
  EXPECT_TRUE(states[0].up);
  EXPECT_EQ(states[0].since, 1000);  // up since the aggregator started
  EXPECT_EQ(states[0].last_error, "");
  EXPECT_EQ(states[0].count, 7);
  EXPECT_EQ(states[1].address, "fake://1");
  EXPECT_FALSE(states[1].up);
  EXPECT_EQ(states[1].since, 1005);
  EXPECT_EQ(states[1].last_error, "fake shard 1: failed on purpose");
  EXPECT_EQ(states[1].count, std::nullopt);
}

TEST(AggregatorHealthTest, ValueRoutingNeverReroutesAnIncrement) {
  HealthCluster cluster(3);
  cluster.shards[1]->FailWith(Code::kUnavailable);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(cluster.aggregator->Increment(Request(1)).ok());
  EXPECT_EQ(cluster.total_increments(), 1);  // one attempt, then skipped while down
}

TEST(AggregatorHealthTest, RoundRobinSpreadsIncrementsOverEveryShardInTurn) {
  HealthCluster cluster(3, Routing::kRoundRobin);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(cluster.aggregator->Increment(Request(1)).ok());
  for (FakeShardClient* shard : cluster.shards) EXPECT_EQ(shard->increments().size(), 2u);
}

TEST(AggregatorHealthTest, RoundRobinAndRandomPassOverAShardThatIsDown) {
  for (Routing routing : {Routing::kRoundRobin, Routing::kRandom}) {
    SCOPED_TRACE(std::string(RoutingName(routing)));
    HealthCluster cluster(3, routing);
    cluster.shards[1]->FailWith(Code::kUnavailable);
    for (int i = 0; i < 30; ++i) {
      Result<IncrementReply> reply = cluster.aggregator->Increment(Request(1));
      ASSERT_TRUE(reply.ok()) << reply.status().message();
      EXPECT_NE(reply->shard_id, 1);
    }
    EXPECT_LE(cluster.shards[1]->increments().size(), 1u);  // asked once, then skipped
    EXPECT_EQ(cluster.aggregator->Total(Plain("default"), /*partial=*/true)->total, 30);
  }
}

TEST(AggregatorHealthTest, TimeoutIsAnsweredAsItIsNeverRerouted) {
  HealthCluster cluster(2, Routing::kRoundRobin);
  cluster.shards[0]->FailWith(Code::kTimeout);
  cluster.shards[1]->FailWith(Code::kTimeout);
  // Whichever shard it goes to times out: the increment may have been applied
  // there, so trying another could count it twice.
  EXPECT_EQ(cluster.aggregator->Increment(Request(1)).status().code(), Code::kTimeout);
  EXPECT_EQ(cluster.total_increments(), 1);
}

TEST(AggregatorHealthTest, ShardsOwnRefusalIsNotRerouted) {
  HealthCluster cluster(2, Routing::kRoundRobin);
  cluster.shards[0]->FailWith(Code::kOutOfRange);
  cluster.shards[1]->FailWith(Code::kOutOfRange);
  EXPECT_EQ(cluster.aggregator->Increment(Request(1)).status().code(), Code::kOutOfRange);
  EXPECT_EQ(cluster.total_increments(), 1);
}

TEST(AggregatorHealthTest, EveryShardDownAnswersUnavailableNamingThemAll) {
  HealthCluster cluster(2, Routing::kRandom);
  cluster.shards[0]->FailWith(Code::kUnavailable);
  cluster.shards[1]->FailWith(Code::kUnavailable);
  Result<IncrementReply> reply = cluster.aggregator->Increment(Request(1));
  EXPECT_EQ(reply.status().code(), Code::kUnavailable);
  EXPECT_NE(reply.status().message().find("fake shard 0"), std::string::npos);
  EXPECT_NE(reply.status().message().find("fake shard 1"), std::string::npos);
}

TEST(AggregatorHealthTest, KeyedIncrementGoesToTheKeysShardAndIsNeverRerouted) {
  for (Routing routing : {Routing::kRoundRobin, Routing::kRandom}) {
    HealthCluster cluster(3, routing);
    const int owner = ShardForKey("retry-me", 3);
    for (int i = 0; i < 3; ++i) {
      Result<IncrementReply> reply = cluster.aggregator->Increment(KeyedRequest(1, "retry-me"));
      ASSERT_TRUE(reply.ok());
      EXPECT_EQ(reply->shard_id, owner);
    }
    cluster.shards[owner]->FailWith(Code::kUnavailable);
    EXPECT_EQ(cluster.aggregator->Increment(KeyedRequest(1, "retry-me")).status().code(),
              Code::kUnavailable);
    EXPECT_EQ(cluster.total_increments(), 4);  // nothing went to another shard
  }
}

TEST(AggregatorHealthTest, PartialTotalSumsTheShardsThatAnswerAndListsTheOthers) {
  HealthCluster cluster(3);
  cluster.shards[0]->set_count(5);
  cluster.shards[1]->set_count(100);
  cluster.shards[2]->set_count(7);
  cluster.shards[1]->FailWith(Code::kUnavailable);
  EXPECT_EQ(cluster.aggregator->Total(Plain("default")).status().code(), Code::kUnavailable);

  Result<TotalReply> reply = cluster.aggregator->Total(Plain("default"), /*partial=*/true);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->total, 12);
  EXPECT_TRUE(reply->partial);
  ASSERT_EQ(reply->missing.size(), 1u);
  EXPECT_EQ(reply->missing[0].shard_id, 1);
  EXPECT_NE(reply->missing[0].error.find("fake shard 1"), std::string::npos);
  EXPECT_EQ(reply->parts, (std::vector<int64_t>{5, 0, 7}));
}

TEST(AggregatorHealthTest, PartialTotalWithEveryShardUpMissesNothing) {
  HealthCluster cluster(2);
  cluster.shards[0]->set_count(1);
  cluster.shards[1]->set_count(2);
  Result<TotalReply> reply = cluster.aggregator->Total(Plain("default"), /*partial=*/true);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->total, 3);
  EXPECT_TRUE(reply->missing.empty());
}

// --- IncrementBatch -----------------------------------------------------------

BatchRequest Batch(std::vector<int64_t> values, std::string key = "") {
  BatchRequest batch;
  batch.values = std::move(values);
  batch.idempotency_key = std::move(key);
  return batch;
}

TEST(AggregatorBatchTest, ValueRoutingSendsEachShardTheSumOfItsValuesOnce) {
  HealthCluster cluster(3);
  Result<BatchReply> reply = cluster.aggregator->IncrementBatch(Batch({1, 2, 3, 4, 5, 6, -1}));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->applied, 7);
  // shard 0: 3 + 6; shard 1: 1 + 4; shard 2: 2 + 5 - 1 (-1 mod 3 is 2)
  EXPECT_EQ(reply->parts, (std::vector<BatchPart>{{0, 2, 9}, {1, 2, 5}, {2, 3, 6}}));
  EXPECT_EQ(cluster.shards[0]->increments(), (std::vector<int64_t>{9}));
  EXPECT_EQ(cluster.shards[1]->increments(), (std::vector<int64_t>{5}));
  EXPECT_EQ(cluster.shards[2]->increments(), (std::vector<int64_t>{6}));
}

TEST(AggregatorBatchTest, ShardsWithNoValueAreNotAsked) {
  HealthCluster cluster(3);
  Result<BatchReply> reply = cluster.aggregator->IncrementBatch(Batch({3, 6}));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->parts, (std::vector<BatchPart>{{0, 2, 9}}));
  EXPECT_EQ(cluster.total_increments(), 1);
}

TEST(AggregatorBatchTest, ShareThatLeavesInt64IsRefusedBeforeAnythingIsCounted) {
  HealthCluster cluster(3);
  Result<BatchReply> reply = cluster.aggregator->IncrementBatch(Batch({1, kMax, 3}));
  EXPECT_EQ(reply.status().code(), Code::kOutOfRange);
  EXPECT_NE(reply.status().message().find("nothing was counted"), std::string::npos);
  EXPECT_EQ(cluster.total_increments(), 0);
}

TEST(AggregatorBatchTest, FailingShardIsNamedWithTheShardsThatCountedTheirShare) {
  HealthCluster cluster(3);
  cluster.shards[1]->FailWith(Code::kUnavailable);
  Result<BatchReply> reply = cluster.aggregator->IncrementBatch(Batch({3, 1, 2}));
  EXPECT_EQ(reply.status().code(), Code::kUnavailable);
  EXPECT_NE(reply.status().message().find("fake shard 1"), std::string::npos);
  EXPECT_NE(reply.status().message().find("shards 0, 2 counted theirs"), std::string::npos)
      << reply.status().message();
}

TEST(AggregatorBatchTest, RoundRobinSendsTheWholeBatchToOneShardPassingOverADownOne) {
  HealthCluster cluster(3, Routing::kRoundRobin);
  cluster.shards[0]->FailWith(Code::kUnavailable);
  for (int i = 0; i < 3; ++i) {
    Result<BatchReply> reply = cluster.aggregator->IncrementBatch(Batch({1, 2, 3}));
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    ASSERT_EQ(reply->parts.size(), 1u);
    EXPECT_NE(reply->parts[0].shard_id, 0);
    EXPECT_EQ(reply->parts[0].applied, 3);
  }
  EXPECT_EQ(cluster.aggregator->Total(Plain("default"), /*partial=*/true)->total, 18);
}

TEST(AggregatorBatchTest, KeyedBatchUnderRandomGoesToTheKeysShardAndCarriesTheKey) {
  HealthCluster cluster(3, Routing::kRandom);
  const int owner = ShardForKey("batch-1", 3);
  Result<BatchReply> reply = cluster.aggregator->IncrementBatch(Batch({1, 2}, "batch-1"));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->parts, (std::vector<BatchPart>{{owner, 2, 3}}));
  ASSERT_EQ(cluster.shards[owner]->increment_requests().size(), 1u);
  EXPECT_EQ(cluster.shards[owner]->increment_requests()[0].idempotency_key, "batch-1");
}

// --- IncrementMany -------------------------------------------------------------

ManyRequest ManyOf(std::vector<ManyRequest::Item> items, std::string key = "") {
  return ManyRequest{std::move(items), 0, std::move(key)};
}

TEST(AggregatorManyTest, ValueRoutingSendsEachShardItsShareOnceInOrder) {
  HealthCluster cluster(3);
  Result<ManyBatchReply> reply = cluster.aggregator->IncrementMany(
      ManyOf({{"a", 1}, {"b", 3}, {"c", 4}, {"a", -1}, {"d", 6}}, "k1"));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->applied, 5);
  // shard 0: 3 and 6; shard 1: 1 and 4; shard 2: -1 (-1 mod 3 is 2)
  EXPECT_EQ(reply->parts, (std::vector<ManyReply>{{0, 2, 0}, {1, 2, 0}, {2, 1, 0}}));
  EXPECT_EQ(cluster.shards[0]->many_requests(),
            (std::vector<ManyRequest>{ManyOf({{"b", 3}, {"d", 6}}, "k1")}));
  EXPECT_EQ(cluster.shards[1]->many_requests(),
            (std::vector<ManyRequest>{ManyOf({{"a", 1}, {"c", 4}}, "k1")}));
  EXPECT_EQ(cluster.shards[2]->many_requests(),
            (std::vector<ManyRequest>{ManyOf({{"a", -1}}, "k1")}));
  EXPECT_EQ(cluster.aggregator->Total(Plain("a"))->total, 0);
}

TEST(AggregatorManyTest, ShardsWithNoShareAreNotAskedAndTheWindowGoesWithEachShare) {
  HealthCluster cluster(3);
  cluster.shards[0]->set_window_end(1234);
  ManyRequest request = ManyOf({{"a", 3}, {"b", 6}});
  request.window = 60;
  Result<ManyBatchReply> reply = cluster.aggregator->IncrementMany(request);
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->parts, (std::vector<ManyReply>{{0, 2, 1234}}));
  EXPECT_EQ(reply->window_end, 1234);
  EXPECT_TRUE(cluster.shards[1]->many_requests().empty());
  EXPECT_EQ(cluster.shards[0]->many_requests().at(0).window, 60);
}

TEST(AggregatorManyTest, ACounterWhoseIncrementsInAShareLeaveInt64IsRefusedBeforeAnything) {
  HealthCluster cluster(3);
  // kMax and 1 both go to shard 1 (kMax mod 3 is 1), for the same counter.
  Result<ManyBatchReply> reply = cluster.aggregator->IncrementMany(
      ManyOf({{"x", 3}, {"big", kMax}, {"other", kMax}, {"big", 1}}));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kOutOfRange);
  EXPECT_THAT(reply.status().message(), HasSubstr("'big'"));
  EXPECT_THAT(reply.status().message(), HasSubstr("nothing was counted"));
  for (const auto& shard : cluster.shards) EXPECT_TRUE(shard->many_requests().empty());
  // Large values of different counters, or that cancel out, are fine (all on shard 1).
  EXPECT_TRUE(
      cluster.aggregator->IncrementMany(ManyOf({{"big", kMax}, {"other", kMax}, {"big", -2}}))
          .ok());
  EXPECT_EQ(cluster.shards[1]->part(Plain("big")), kMax - 2);
}

TEST(AggregatorManyTest, AFailingShardIsNamedWithTheShardsThatCountedTheirShare) {
  HealthCluster cluster(3);
  cluster.shards[1]->FailWith(Code::kUnavailable);
  Result<ManyBatchReply> reply =
      cluster.aggregator->IncrementMany(ManyOf({{"a", 3}, {"a", 1}, {"a", 2}}));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kUnavailable);
  EXPECT_THAT(reply.status().message(), HasSubstr("fake shard 1"));
  EXPECT_THAT(reply.status().message(), HasSubstr("shards 0, 2 counted theirs"));
}

TEST(AggregatorManyTest, RoundRobinSendsTheWholeBatchToOneShardAndAKeyedOneToTheKeysShard) {
  HealthCluster cluster(3, Routing::kRoundRobin);
  cluster.shards[0]->FailWith(Code::kUnavailable);
  for (int i = 0; i < 3; ++i) {
    Result<ManyBatchReply> reply = cluster.aggregator->IncrementMany(ManyOf({{"a", 1}, {"b", 2}}));
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    ASSERT_EQ(reply->parts.size(), 1u);
    EXPECT_NE(reply->parts[0].shard_id, 0);
    EXPECT_EQ(reply->applied, 2);
  }
  cluster.shards[0]->Recover();
  const int owner = ShardForKey("batch-1", 3);
  Result<ManyBatchReply> keyed =
      cluster.aggregator->IncrementMany(ManyOf({{"a", 1}, {"b", 2}}, "batch-1"));
  ASSERT_TRUE(keyed.ok()) << keyed.status().message();
  EXPECT_EQ(keyed->parts, (std::vector<ManyReply>{{owner, 2, 0}}));
  EXPECT_EQ(cluster.shards[owner]->many_requests().back().idempotency_key, "batch-1");
}

TEST(AggregatorManyTest, OverRealShardsARetryWithTheKeyCountsOnce) {
  std::vector<std::unique_ptr<Shard>> shards;
  std::vector<std::unique_ptr<ShardClient>> clients;
  for (int i = 0; i < 3; ++i) {
    shards.push_back(std::make_unique<Shard>(i));
    clients.push_back(std::make_unique<LocalShardClient>(*shards.back()));
  }
  Aggregator aggregator(std::move(clients));
  std::vector<ManyRequest::Item> items;
  for (int i = 0; i < 1000; ++i) items.push_back({fmt::format("c:{:07}", i % 400), i - 500});
  const ManyRequest request = ManyOf(items, "load-1");
  Result<ManyBatchReply> first = aggregator.IncrementMany(request);
  ASSERT_TRUE(first.ok()) << first.status().message();
  Result<ManyBatchReply> retry = aggregator.IncrementMany(request);
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(retry->applied, 1000);
  EXPECT_EQ(retry->parts, first->parts);
  std::map<std::string, int64_t> expected;
  for (const ManyRequest::Item& item : items) expected[item.counter] += item.value;
  for (const auto& [name, total] : expected) {
    ASSERT_EQ(aggregator.Total(Plain(name))->total, total) << name;
  }
  EXPECT_EQ(aggregator.IncrementMany(ManyOf({{"c:0000001", 1}}, "load-1")).status().code(),
            Code::kKeyReused);
}

// --- Leaderboards and pages over real shards, against every total -----------

// Three in-process shards holding parts of `names` counters spread at random
// (each on one, two or three shards; parts from -range to +range, so totals
// tie and go negative), with every total worked out by hand. With
// `with_totals`, the shards keep a TotalTable and the aggregator's
// leaderboards come from it (as in one `serve`); without, from the threshold
// algorithm over the shards (as across processes).
struct SpreadCounters {
  SpreadCounters(unsigned seed, int names, int range, bool one_shard_each,
                 bool with_totals = false) {
    std::mt19937 random(seed);
    std::vector<std::unique_ptr<ShardClient>> clients;
    for (int i = 0; i < 3; ++i) {
      shards.push_back(std::make_unique<Shard>(i, nullptr, nullptr,
                                               kDefaultIdempotencyWindowSeconds,
                                               with_totals ? &total_table : nullptr));
      clients.push_back(std::make_unique<LocalShardClient>(*shards.back()));
    }
    AggregatorOptions options;
    if (with_totals) options.totals = &total_table;
    aggregator.emplace(std::move(clients), std::move(options));
    std::uniform_int_distribution<int> part(-range, range);
    for (int n = 0; n < names; ++n) {
      std::string name = (n % 4 == 0 ? "x:" : "c:") + std::to_string(n * 7919 % 1000);
      int spread = one_shard_each ? 1 : 1 + static_cast<int>(random() % 3);
      int first = static_cast<int>(random() % 3);
      for (int j = 0; j < spread; ++j) {
        int value = part(random);
        EXPECT_TRUE(shards[(first + j) % 3]->Increment(Request(value, Plain(name))).ok());
        totals[name] += value;
      }
    }
  }

  // The `k` highest totals with `prefix`, highest first, ties by name.
  std::vector<CounterTotal> Expected(size_t k, const std::string& prefix) const {
    std::vector<CounterTotal> all;
    for (const auto& [name, total] : totals) {
      if (name.starts_with(prefix)) all.push_back({name, total});
    }
    std::sort(all.begin(), all.end(), [](const CounterTotal& a, const CounterTotal& b) {
      return a.total != b.total ? a.total > b.total : a.name < b.name;
    });
    if (all.size() > k) all.resize(k);
    return all;
  }

  TotalTable total_table;  // outlives the shards
  std::vector<std::unique_ptr<Shard>> shards;
  std::optional<Aggregator> aggregator;
  std::map<std::string, int64_t> totals;
};

class AggregatorTopTest : public testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(FromShardsAndFromTotals, AggregatorTopTest, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& info) {
                           return info.param ? "TotalTable" : "ThresholdAlgorithm";
                         });

TEST_P(AggregatorTopTest, TopIsEveryTotalsHighestWhereverThePartsAre) {
  for (unsigned seed = 1; seed <= 12; ++seed) {
    for (bool one_shard_each : {false, true}) {
      SpreadCounters counters(seed, 400, seed % 2 == 0 ? 5 : 1000, one_shard_each, GetParam());
      for (int k : {1, 3, 10, 64, 65, 150, 1000}) {
        for (const std::string& prefix : {std::string(), std::string("x:")}) {
          SCOPED_TRACE(testing::Message()
                       << "seed " << seed << (one_shard_each ? ", one shard" : "") << ", top " << k
                       << ", prefix '" << prefix << "'");
          Result<CounterList> top = counters.aggregator->List(Top(k, prefix));
          ASSERT_TRUE(top.ok()) << top.status().message();
          EXPECT_EQ(top->counters, counters.Expected(static_cast<size_t>(k), prefix));
          EXPECT_EQ(top->next, "");
        }
      }
    }
  }
}

TEST_P(AggregatorTopTest, TopOfCountersThatAreAllNegativeOrZeroIsExact) {
  SpreadCounters counters(7, 200, 0, false, GetParam());  // every part 0
  for (const auto& shard : counters.shards) {
    ASSERT_TRUE(shard->Increment(Request(-3, Plain("c:neg"))).ok());
  }
  counters.totals["c:neg"] = -9;
  Result<CounterList> top = counters.aggregator->List(Top(5));
  ASSERT_TRUE(top.ok()) << top.status().message();
  EXPECT_EQ(top->counters, counters.Expected(5, ""));
  Result<CounterList> all = counters.aggregator->List(Top(1000));
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->counters.back(), (CounterTotal{"c:neg", -9}));
}

TEST_P(AggregatorTopTest, ResetCountersLeaveTheTopAndTotalsOverflowingInt64AreRefused) {
  SpreadCounters counters(3, 300, 50, false, GetParam());
  std::vector<CounterTotal> before = counters.Expected(5, "");
  ASSERT_TRUE(counters.aggregator->Reset(before[0].name).ok());
  counters.totals.erase(before[0].name);
  Result<CounterList> top = counters.aggregator->List(Top(5));
  ASSERT_TRUE(top.ok()) << top.status().message();
  EXPECT_EQ(top->counters, counters.Expected(5, ""));

  // Two parts near the int64 limit: their total does not fit, and a top
  // that would include it says so rather than ranking a wrapped number.
  for (int i : {0, 1}) {
    ASSERT_TRUE(counters.shards[i]->Increment(Request(kMax, Plain("c:huge"))).ok());
  }
  Result<CounterList> refused = counters.aggregator->List(Top(5));
  EXPECT_EQ(refused.status().code(), Code::kInternal);
  EXPECT_NE(refused.status().message().find("does not fit"), std::string::npos)
      << refused.status().message();
  // Back in range: ranked again, exactly.
  ASSERT_TRUE(counters.shards[1]->Increment(Request(-kMax, Plain("c:huge"))).ok());
  counters.totals["c:huge"] = kMax;
  top = counters.aggregator->List(Top(5));
  ASSERT_TRUE(top.ok()) << top.status().message();
  EXPECT_EQ(top->counters, counters.Expected(5, ""));
}

TEST(AggregatorTopTotalsTest, EveryTopTakenWhileIncrementsRunIsExactAtSomeMoment) {
  // Two threads add 1 to random counters while a third reads the top 10:
  // every answer must be in rank order with totals no higher than at the end,
  // and the top once they stop must be exact.
  SpreadCounters counters(5, 200, 0, false, /*with_totals=*/true);
  std::atomic<int> finished{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&counters, &finished, w] {
      std::mt19937 random(static_cast<unsigned>(w));
      for (int i = 0; i < 20000; ++i) {
        std::string name = "c:" + std::to_string(random() % 50);
        EXPECT_TRUE(
            counters.shards[static_cast<size_t>(i % 3)]->Increment(Request(1, Plain(name))).ok());
      }
      ++finished;
    });
  }
  std::vector<std::vector<CounterTotal>> answers;
  while (finished < 2) {
    Result<CounterList> top = counters.aggregator->List(Top(10));
    ASSERT_TRUE(top.ok()) << top.status().message();
    answers.push_back(top->counters);
  }
  for (auto& writer : writers) writer.join();
  std::map<std::string, int64_t> final_totals;
  for (const auto& [name, unused] : counters.totals) final_totals[name] = 0;
  for (int n = 0; n < 50; ++n) final_totals["c:" + std::to_string(n)] = 0;
  for (auto& [name, total] : final_totals) {
    total = counters.aggregator->Total(Plain(name))->total;
  }
  ASSERT_FALSE(answers.empty());
  for (const auto& answer : answers) {
    ASSERT_EQ(answer.size(), 10u);
    for (size_t i = 0; i < answer.size(); ++i) {
      EXPECT_LE(answer[i].total, final_totals[answer[i].name]);
      if (i > 0) {
        EXPECT_TRUE(
            answer[i - 1].total > answer[i].total ||
            (answer[i - 1].total == answer[i].total && answer[i - 1].name < answer[i].name));
      }
    }
  }
  Result<CounterList> last = counters.aggregator->List(Top(10));
  ASSERT_TRUE(last.ok());
  std::vector<CounterTotal> expected;
  for (const auto& [name, total] : final_totals) expected.push_back({name, total});
  std::sort(expected.begin(), expected.end(), [](const CounterTotal& a, const CounterTotal& b) {
    return a.total != b.total ? a.total > b.total : a.name < b.name;
  });
  expected.resize(10);
  EXPECT_EQ(last->counters, expected);
}

TEST(AggregatorLeaderboardTest, WalkingPagesVisitsEveryTotalOnceInNameOrder) {
  for (unsigned seed = 1; seed <= 6; ++seed) {
    SpreadCounters counters(seed, 300, 9, seed % 2 == 0);
    for (int limit : {1, 2, 7, 64, 299, 300, 1000}) {
      for (const std::string& prefix : {std::string(), std::string("x:")}) {
        SCOPED_TRACE(testing::Message()
                     << "seed " << seed << ", limit " << limit << ", prefix '" << prefix << "'");
        std::vector<CounterTotal> visited;
        std::string after;
        int pages = 0;
        do {
          Result<CounterList> page = counters.aggregator->List(Paged(limit, after, prefix));
          ASSERT_TRUE(page.ok()) << page.status().message();
          ASSERT_LE(page->counters.size(), static_cast<size_t>(limit));
          visited.insert(visited.end(), page->counters.begin(), page->counters.end());
          if (!page->next.empty()) {
            EXPECT_EQ(page->next, page->counters.back().name);
          }
          after = page->next;
          ASSERT_LT(++pages, 400);
        } while (!after.empty());
        std::vector<CounterTotal> expected;
        for (const auto& [name, total] : counters.totals) {
          if (name.starts_with(prefix)) expected.push_back({name, total});
        }
        EXPECT_EQ(visited, expected);
        // A page that ends exactly at the last name says no more follow.
        EXPECT_EQ(pages, std::max<int>(1, (static_cast<int>(expected.size()) + limit - 1) / limit));
      }
    }
  }
}

}  // namespace
}  // namespace shardctl::core
