// CombiningShardClient: concurrent increments of one counter travel as one,
// and each caller still gets the count right after its own value.
#include "core/combining_shard_client.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

IncrementRequest Value(int64_t value) { return {value, CounterRef{}}; }

// A shard that records every increment it is sent and, while `held`, keeps
// callers waiting inside Increment until released.
class GatedShard : public ShardClient {
 public:
  Result<IncrementReply> Increment(const IncrementRequest& request) override {
    std::unique_lock lock(mutex_);
    ++inside_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return !held_; });
    --inside_;
    sent_.push_back(request.value);
    if (throw_) throw std::runtime_error("out of threads");
    if (!fail_.ok()) return fail_;
    if ((request.value > 0 && count_ > std::numeric_limits<int64_t>::max() - request.value) ||
        (request.value < 0 && count_ < std::numeric_limits<int64_t>::min() - request.value)) {
      return OutOfRange("would overflow");
    }
    count_ += request.value;
    return IncrementReply{1, count_, 0};
  }
  Result<CountReply> Count(const CounterRef&) override { return CountReply{1, count_, 0}; }
  Result<std::vector<CounterPart>> List(const std::string&) override {
    return std::vector<CounterPart>{};
  }
  Result<int64_t> Reset(const std::string&) override { return 0; }
  std::string Describe() const override { return "gated shard"; }
  std::string Address() const override { return "test"; }

  void Hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void Release() {
    std::lock_guard lock(mutex_);
    held_ = false;
    changed_.notify_all();
  }
  // Waits until `n` callers are held inside Increment.
  void AwaitInside(int n) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return inside_ >= n; });
  }
  void Throw() {
    std::lock_guard lock(mutex_);
    throw_ = true;
  }
  void Fail(Status status) {
    std::lock_guard lock(mutex_);
    fail_ = std::move(status);
  }
  void Set(int64_t count) {
    std::lock_guard lock(mutex_);
    count_ = count;
  }
  std::vector<int64_t> sent() {
    std::lock_guard lock(mutex_);
    return sent_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool held_ = false;
  int inside_ = 0;
  int64_t count_ = 0;
  Status fail_;
  bool throw_ = false;
  std::vector<int64_t> sent_;
};

class CombiningShardClientTest : public ::testing::Test {
 protected:
  CombiningShardClientTest() {
    auto shard = std::make_unique<GatedShard>();
    shard_ = shard.get();
    client_ = std::make_unique<CombiningShardClient>(std::move(shard));
  }

  // Holds the shard with kMaxInFlight increments of 1 inside it, so that the
  // next ones queue; returns their threads.
  std::vector<std::thread> FillInFlight(std::vector<Result<IncrementReply>>& replies) {
    shard_->Hold();
    std::vector<std::thread> threads;
    for (int i = 0; i < CombiningShardClient::kMaxInFlight; ++i) {
      threads.emplace_back([this, &replies, i] { replies[i] = client_->Increment(Value(1)); });
    }
    shard_->AwaitInside(CombiningShardClient::kMaxInFlight);
    return threads;
  }

  // Starts an increment of `value` in a thread and waits until it is queued.
  void Queue(std::vector<std::thread>& threads, Result<IncrementReply>& reply, int64_t value,
             uint64_t queued_before) {
    threads.emplace_back([this, &reply, value] { reply = client_->Increment(Value(value)); });
    // Queued: waiting behind the full flight. Nothing observable tells that
    // apart from "not yet called", so wait for the thread to block.
    while (client_->queued() < queued_before + 1) std::this_thread::yield();
  }

  GatedShard* shard_;
  std::unique_ptr<CombiningShardClient> client_;
};

TEST_F(CombiningShardClientTest, AloneAnIncrementGoesAsItIs) {
  Result<IncrementReply> reply = client_->Increment(Value(5));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->count, 5);
  EXPECT_EQ(shard_->sent(), (std::vector<int64_t>{5}));
  EXPECT_EQ(client_->combined_requests(), 0u);
}

TEST_F(CombiningShardClientTest, QueuedIncrementsTravelAsOneAndEachGetsItsOwnCount) {
  constexpr int kInFlight = CombiningShardClient::kMaxInFlight;
  std::vector<Result<IncrementReply>> replies(kInFlight + 3, IncrementReply{});
  std::vector<std::thread> threads = FillInFlight(replies);
  Queue(threads, replies[kInFlight], 10, 0);
  Queue(threads, replies[kInFlight + 1], 20, 1);
  Queue(threads, replies[kInFlight + 2], 30, 2);
  shard_->Release();
  for (std::thread& thread : threads) thread.join();

  std::vector<int64_t> sent = shard_->sent();
  ASSERT_EQ(sent.size(), static_cast<size_t>(kInFlight + 1));
  EXPECT_NE(std::find(sent.begin(), sent.end(), 60), sent.end());  // 10 + 20 + 30 in one
  EXPECT_EQ(client_->combined_requests(), 1u);
  // The queue went once one in flight was answered (the other may follow
  // it), its values in queue order: 10, then 20, then 30.
  EXPECT_GE(replies[kInFlight]->count, 1 + 10);
  EXPECT_LE(replies[kInFlight]->count, kInFlight + 10);
  EXPECT_EQ(replies[kInFlight + 1]->count, replies[kInFlight]->count + 20);
  EXPECT_EQ(replies[kInFlight + 2]->count, replies[kInFlight]->count + 50);
  EXPECT_EQ(shard_->Count({})->count, kInFlight + 60);
}

TEST_F(CombiningShardClientTest, AFailureReachesEveryIncrementThatTravelledWithIt) {
  constexpr int kInFlight = CombiningShardClient::kMaxInFlight;
  std::vector<Result<IncrementReply>> replies(kInFlight + 2, IncrementReply{});
  std::vector<std::thread> threads = FillInFlight(replies);
  Queue(threads, replies[kInFlight], 10, 0);
  Queue(threads, replies[kInFlight + 1], 20, 1);
  shard_->Fail(Status(Code::kTimeout, "no answer in time"));
  shard_->Release();
  for (std::thread& thread : threads) thread.join();
  for (const auto& reply : replies) {
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), Code::kTimeout);
  }
}

TEST_F(CombiningShardClientTest, AShardClientThatThrowsLeavesNobodyWaiting) {
  constexpr int kInFlight = CombiningShardClient::kMaxInFlight;
  std::vector<Result<IncrementReply>> replies(kInFlight + 2, IncrementReply{});
  std::vector<std::thread> threads = FillInFlight(replies);
  Queue(threads, replies[kInFlight], 10, 0);
  Queue(threads, replies[kInFlight + 1], 20, 1);
  shard_->Throw();
  shard_->Release();
  for (std::thread& thread : threads) thread.join();  // would hang before
  for (const auto& reply : replies) {
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), Code::kTimeout);
    EXPECT_NE(reply.status().message().find("out of threads"), std::string::npos);
  }
}

TEST_F(CombiningShardClientTest, AQueueWhoseSumOverflowsGoesValueByValue) {
  constexpr int kInFlight = CombiningShardClient::kMaxInFlight;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  std::vector<Result<IncrementReply>> replies(kInFlight + 2, IncrementReply{});
  std::vector<std::thread> threads = FillInFlight(replies);
  Queue(threads, replies[kInFlight], kMax - 10, 0);
  Queue(threads, replies[kInFlight + 1], 100, 1);
  shard_->Release();
  for (std::thread& thread : threads) thread.join();
  // Together they overflow: the first fits alone, the second does not.
  ASSERT_TRUE(replies[kInFlight].ok()) << replies[kInFlight].status().message();
  EXPECT_GE(replies[kInFlight]->count, kMax - 10 + 1);
  ASSERT_FALSE(replies[kInFlight + 1].ok());
  EXPECT_EQ(replies[kInFlight + 1].status().code(), Code::kOutOfRange);
  EXPECT_EQ(shard_->Count({})->count, kMax - 10 + kInFlight);
}

// Queues come and go with the counters in use while other callers hold
// theirs (an unordered_map's rehash once invalidated the one a caller held).
TEST_F(CombiningShardClientTest, ManyCountersAtOnceEachCountOnce) {
  constexpr int kThreads = 8, kEach = 300;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        IncrementRequest request = Value(1);
        request.counter.name = "c" + std::to_string(t) + "-" + std::to_string(i % 37);
        if (!client_->Increment(request).ok()) ++failed;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(shard_->Count({})->count, kThreads * kEach);  // the fake keeps one count
}

TEST_F(CombiningShardClientTest, KeyedIncrementsNeverQueue) {
  constexpr int kInFlight = CombiningShardClient::kMaxInFlight;
  std::vector<Result<IncrementReply>> replies(kInFlight, IncrementReply{});
  std::vector<std::thread> threads = FillInFlight(replies);
  Result<IncrementReply> keyed = IncrementReply{};
  threads.emplace_back([&] { keyed = client_->Increment({7, CounterRef{}, "key-1"}); });
  shard_->AwaitInside(kInFlight + 1);  // it went straight to the shard
  EXPECT_EQ(client_->queued(), 0u);
  shard_->Release();
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(keyed.ok());
  EXPECT_EQ(client_->combined_requests(), 0u);
}

}  // namespace
}  // namespace shardctl::core
