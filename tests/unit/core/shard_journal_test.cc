// Shard with a Journal: what it appends, how it undoes a change the journal
// failed to keep, and how Replay and Checkpoint rebuild it.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

#include "core/aggregator.h"
#include "core/durable_batch.h"
#include "core/journal.h"
#include "core/record.h"
#include "core/shard.h"

namespace shardctl::core {
namespace {

using ::testing::HasSubstr;

using test::kMax;
using test::Plain;
using test::Request;
using test::Windowed;

// A journal in memory: keeps every appended record; while `fail` is set,
// every Wait fails as a full disk would.
class FakeJournal : public Journal {
 public:
  std::shared_ptr<Ticket> Append(const Record& record) override {
    std::lock_guard lock(mutex_);
    records_.push_back(record);
    return std::make_shared<Ticket>();
  }
  Status Wait(const std::shared_ptr<Ticket>& ticket) override {
    EXPECT_NE(ticket, nullptr);
    ++waits_;
    if (fail) return Internal("no space left on device");
    return {};
  }

  std::vector<Record> records() const {
    std::lock_guard lock(mutex_);
    return records_;
  }
  int waits() const { return waits_; }

  std::atomic<bool> fail{false};

 private:
  mutable std::mutex mutex_;
  std::vector<Record> records_;
  std::atomic<int> waits_{0};
};

// A time that starts a window of 60 s and one of 3600 s.
constexpr int64_t kT0 = 1'699'999'200;

struct FakeClock {
  int64_t now = kT0;
  Shard::NowFn Fn() {
    return [this] { return now; };
  }
};

Record Add(std::string name, int64_t amount, int64_t window = 0, int64_t window_start = 0) {
  return {Record::Kind::kAdd, std::move(name), window, window_start, amount};
}
Record Remove(std::string name, int64_t amount, int64_t window = 0, int64_t window_start = 0) {
  return {Record::Kind::kRemove, std::move(name), window, window_start, amount};
}
Record Set(std::string name, int64_t amount, int64_t window = 0, int64_t window_start = 0) {
  return {Record::Kind::kSet, std::move(name), window, window_start, amount};
}

std::vector<CounterPart> Sorted(std::vector<CounterPart> parts) {
  std::sort(parts.begin(), parts.end(),
            [](const CounterPart& a, const CounterPart& b) { return a.name < b.name; });
  return parts;
}

int64_t CountOf(const Shard& shard, const CounterRef& counter) {
  return shard.Count(counter).count;
}

void Increment(Shard& shard, int64_t value, const CounterRef& counter) {
  Result<IncrementReply> reply = shard.Increment(Request(value, counter));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
}

void ReplayAll(Shard& shard, const std::vector<Record>& records) {
  for (const Record& record : records) {
    Status status = shard.Replay(record);
    ASSERT_TRUE(status.ok()) << status.message();
  }
}

// Everything a test can observe of a shard, for the counters it names.
struct Observed {
  std::vector<CounterPart> plain;
  std::vector<int64_t> counts;
  size_t size;
  bool operator==(const Observed&) const = default;
};
void PrintTo(const Observed& observed, std::ostream* os) {
  *os << "{plain:";
  for (const CounterPart& part : observed.plain) *os << " " << part.name << "=" << part.count;
  *os << "; counts:";
  for (int64_t count : observed.counts) *os << " " << count;
  *os << "; size " << observed.size << "}";
}
Observed Observe(const Shard& shard, const std::vector<CounterRef>& counters) {
  Observed observed{Sorted(shard.List("")), {}, shard.size()};
  for (const CounterRef& counter : counters) observed.counts.push_back(CountOf(shard, counter));
  return observed;
}

// --- What changes append --------------------------------------------------

TEST(ShardJournalTest, IncrementsAppendAddRecordsWithTheirWindowStart) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(0, clock.Fn(), &journal);
  Increment(shard, 5, Plain("hits"));
  Increment(shard, -2, Plain("hits"));
  Increment(shard, 7, Windowed("api", 60));
  clock.now += 61;
  Increment(shard, 1, Windowed("api", 60));

  EXPECT_EQ(journal.records(),
            (std::vector<Record>{Add("hits", 5), Add("hits", -2), Add("api", 7, 60, kT0),
                                 Add("api", 1, 60, kT0 + 60)}));
  EXPECT_EQ(journal.waits(), 4);
}

TEST(ShardJournalTest, OverflowingIncrementAppendsNothing) {
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  Increment(shard, kMax, Plain("big"));
  Result<IncrementReply> reply = shard.Increment(Request(1, Plain("big")));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kOutOfRange);
  EXPECT_EQ(journal.records(), (std::vector<Record>{Add("big", kMax)}));
}

TEST(ShardJournalTest, ResetAppendsARemoveOfMinusTheCountForEveryCell) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(0, clock.Fn(), &journal);
  Increment(shard, 5, Plain("api"));
  Increment(shard, 3, Windowed("api", 60));
  Increment(shard, -4, Windowed("api", 3600));
  Increment(shard, 9, Plain("other"));
  size_t before = journal.records().size();

  Result<int64_t> removed = shard.Reset("api");
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 5);

  std::vector<Record> appended = journal.records();
  appended.erase(appended.begin(), appended.begin() + static_cast<ptrdiff_t>(before));
  std::sort(appended.begin(), appended.end(),
            [](const Record& a, const Record& b) { return a.window < b.window; });
  EXPECT_EQ(appended, (std::vector<Record>{Remove("api", -5), Remove("api", -3, 60, kT0),
                                           Remove("api", 4, 3600, kT0)}));
  EXPECT_EQ(CountOf(shard, Plain("other")), 9);
}

TEST(ShardJournalTest, ResetOfANameNeverSeenAppendsNothing) {
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  Increment(shard, 1, Plain("kept"));
  Result<int64_t> removed = shard.Reset("never");
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 0);
  EXPECT_EQ(journal.records(), (std::vector<Record>{Add("kept", 1)}));
}

// --- Undo when the journal fails -------------------------------------------

TEST(ShardJournalTest, FailedWaitUndoesTheIncrementAndReturnsInternal) {
  FakeJournal journal;
  Shard shard(4, nullptr, &journal);
  Increment(shard, 10, Plain("hits"));
  journal.fail = true;
  Result<IncrementReply> reply = shard.Increment(Request(5, Plain("hits")));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kInternal);
  EXPECT_THAT(reply.status().message(), HasSubstr("shard 4"));
  EXPECT_THAT(reply.status().message(), HasSubstr("no space left on device"));
  EXPECT_EQ(CountOf(shard, Plain("hits")), 10);

  journal.fail = false;
  Increment(shard, 1, Plain("hits"));
  EXPECT_EQ(CountOf(shard, Plain("hits")), 11);
}

// --- Under a DurableBatch (an event loop's pass) ----------------------------

TEST(ShardJournalTest, UnderADurableBatchTheWaitIsLeftToFinish) {
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  DurableBatch batch;
  batch.BeginRequest(0);
  ASSERT_TRUE(shard.Increment(Request(2, Plain("hits"))).ok());
  batch.BeginRequest(1);
  ASSERT_TRUE(shard.Increment(Request(3, Plain("hits"))).ok());
  EXPECT_EQ(journal.waits(), 0);
  EXPECT_TRUE(batch.Finish().empty());
  EXPECT_EQ(journal.waits(), 2);
  EXPECT_EQ(CountOf(shard, Plain("hits")), 5);
}

TEST(ShardJournalTest, UnderADurableBatchAFailedWriteIsUndoneAndNamesItsRequest) {
  FakeJournal journal;
  Shard shard(7, nullptr, &journal);
  Increment(shard, 10, Plain("hits"));
  DurableBatch batch;
  batch.BeginRequest(3);
  Result<IncrementReply> reply = shard.Increment(Request(5, Plain("hits")));
  ASSERT_TRUE(reply.ok());  // answered only after Finish, which overrides it
  EXPECT_EQ(reply->count, 15);
  journal.fail = true;
  std::vector<std::pair<size_t, Status>> failed = batch.Finish();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].first, 3u);
  EXPECT_EQ(failed[0].second.code(), Code::kInternal);
  EXPECT_THAT(failed[0].second.message(), HasSubstr("shard 7"));
  EXPECT_THAT(failed[0].second.message(), HasSubstr("no space left on device"));
  EXPECT_EQ(CountOf(shard, Plain("hits")), 10);
}

TEST(ShardJournalTest, UnderADurableBatchAKeyedIncrementStillWaitsItself) {
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  DurableBatch batch;
  IncrementRequest request = Request(2, Plain("hits"));
  request.idempotency_key = "k1";
  ASSERT_TRUE(shard.Increment(request).ok());
  EXPECT_EQ(journal.waits(), 1);
  EXPECT_TRUE(batch.Finish().empty());
}

// A batch over several shards says which of them took their share, so each
// share's write is known before the answer: a failed one must not be
// reported later, as the whole batch's failure, after other shares stayed.
TEST(ShardJournalTest, UnderADurableBatchABatchOverShardsWaitsForEachShare) {
  FakeJournal good, full;
  full.fail = true;
  Shard shard0(0, nullptr, &good), shard1(1, nullptr, &full);
  std::vector<std::unique_ptr<ShardClient>> clients;
  clients.push_back(std::make_unique<LocalShardClient>(shard0));
  clients.push_back(std::make_unique<LocalShardClient>(shard1));
  Aggregator aggregator(std::move(clients));
  DurableBatch batch;
  BatchRequest request;
  request.values = {2, 3};  // 2 to shard 0, 3 to shard 1
  Result<BatchReply> reply = aggregator.IncrementBatch(request);
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply.status().message(), HasSubstr("shards 0 counted theirs"));
  EXPECT_TRUE(batch.Finish().empty());
  EXPECT_EQ(CountOf(shard0, CounterRef{}), 2);
  EXPECT_EQ(CountOf(shard1, CounterRef{}), 0);
}

TEST(ShardJournalTest, FailedWaitUndoesAWindowedIncrement) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(0, clock.Fn(), &journal);
  Increment(shard, 3, Windowed("api", 60));
  journal.fail = true;
  EXPECT_FALSE(shard.Increment(Request(4, Windowed("api", 60))).ok());
  EXPECT_EQ(CountOf(shard, Windowed("api", 60)), 3);
}

TEST(ShardJournalTest, FailedFirstIncrementLeavesNoCounterBehind) {
  // The journal holds nothing of "fresh", so neither may the shard: a restart
  // would not show it, and neither should a listing now.
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  journal.fail = true;
  EXPECT_FALSE(shard.Increment(Request(5, Plain("fresh"))).ok());
  EXPECT_EQ(CountOf(shard, Plain("fresh")), 0);
  for (const CounterPart& part : shard.List("")) {
    ADD_FAILURE() << "listed '" << part.name << "' = " << part.count;
  }
  EXPECT_EQ(shard.size(), 0u);
}

TEST(ShardJournalTest, FailedResetRestoresTheCounterAndItsWindows) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(2, clock.Fn(), &journal);
  Increment(shard, 5, Plain("api"));
  Increment(shard, 3, Windowed("api", 60));
  Increment(shard, 8, Plain("other"));
  const std::vector<CounterRef> counters = {Plain("api"), Windowed("api", 60), Plain("other")};
  Observed before = Observe(shard, counters);

  journal.fail = true;
  Result<int64_t> removed = shard.Reset("api");
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.status().code(), Code::kInternal);
  EXPECT_THAT(removed.status().message(), HasSubstr("shard 2"));
  EXPECT_EQ(Observe(shard, counters), before);

  journal.fail = false;
  Result<int64_t> retried = shard.Reset("api");
  ASSERT_TRUE(retried.ok()) << retried.status().message();
  EXPECT_EQ(*retried, 5);
  EXPECT_EQ(CountOf(shard, Plain("api")), 0);
  EXPECT_EQ(CountOf(shard, Windowed("api", 60)), 0);
}

// --- Replay ----------------------------------------------------------------

TEST(ShardJournalTest, ReplayOfWhatIncrementsAndResetsAppendedReproducesTheState) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(0, clock.Fn(), &journal);
  Increment(shard, 5, Plain("a"));
  Increment(shard, -3, Plain("b"));
  Increment(shard, 2, Windowed("a", 60));
  Increment(shard, 7, Plain("c"));
  ASSERT_TRUE(shard.Reset("c").ok());
  Increment(shard, 1, Plain("a"));
  clock.now += 120;  // "a" per 60 s moves to a new window
  Increment(shard, 4, Windowed("a", 60));
  Increment(shard, 6, Windowed("b", 3600));

  Shard replayed(0, clock.Fn());
  ReplayAll(replayed, journal.records());
  const std::vector<CounterRef> counters = {Plain("a"), Plain("b"), Plain("c"), Windowed("a", 60),
                                            Windowed("b", 3600)};
  EXPECT_EQ(Observe(replayed, counters), Observe(shard, counters));
  EXPECT_EQ(CountOf(replayed, Windowed("a", 60)), 4);
  EXPECT_EQ(Sorted(replayed.List("")), (std::vector<CounterPart>{{"a", 6}, {"b", -3}}));
}

TEST(ShardJournalTest, ReplayOfAddAndSetSetsAndAdds) {
  Shard shard(0);
  ReplayAll(shard, {Add("x", 5), Add("x", 2), Set("y", 40), Add("y", 2), Set("x", -1)});
  EXPECT_EQ(CountOf(shard, Plain("x")), -1);
  EXPECT_EQ(CountOf(shard, Plain("y")), 42);
}

TEST(ShardJournalTest, ReplayIgnoresARecordOfAnOlderWindow) {
  FakeClock clock;
  Shard shard(0, clock.Fn());
  const int64_t now = clock.now;
  ReplayAll(shard,
            {Add("w", 5, 60, now), Add("w", 100, 60, now - 60), Remove("w", -100, 60, now - 60)});
  EXPECT_EQ(CountOf(shard, Windowed("w", 60)), 5);
  EXPECT_EQ(shard.size(), 1u);
}

TEST(ShardJournalTest, ReplayOfANewerWindowRestartsTheCell) {
  FakeClock clock;
  Shard shard(0, clock.Fn());
  const int64_t now = clock.now;
  ReplayAll(shard, {Add("w", 5, 60, now - 60), Add("w", 2, 60, now)});
  EXPECT_EQ(CountOf(shard, Windowed("w", 60)), 2);
  EXPECT_EQ(shard.size(), 1u);
}

TEST(ShardJournalTest, ReplayOfARemoveToZeroForgetsTheCounter) {
  FakeClock clock;
  Shard shard(0, clock.Fn());
  const int64_t now = clock.now;
  ReplayAll(shard, {Add("gone", 5), Add("kept", 1), Add("gone", 2, 60, now), Remove("gone", -5),
                    Remove("gone", -2, 60, now)});
  EXPECT_EQ(shard.List(""), (std::vector<CounterPart>{{"kept", 1}}));
  EXPECT_EQ(shard.size(), 1u);
  EXPECT_EQ(CountOf(shard, Plain("gone")), 0);
  EXPECT_EQ(CountOf(shard, Windowed("gone", 60)), 0);
}

TEST(ShardJournalTest, ReplayOfARemoveNotToZeroKeepsTheRest) {
  // A remove adds its amount like an add; only a count of exactly 0 is forgotten.
  Shard shard(0);
  ReplayAll(shard, {Add("r", 5), Add("r", 3), Remove("r", -5)});
  EXPECT_EQ(shard.List(""), (std::vector<CounterPart>{{"r", 3}}));
}

TEST(ShardJournalTest, ReplayThatOverflowsIsInternal) {
  Shard shard(0);
  ReplayAll(shard, {Add("o", kMax)});
  Status status = shard.Replay(Add("o", 1));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), Code::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("'o'"));
  EXPECT_EQ(CountOf(shard, Plain("o")), kMax);
}

TEST(ShardJournalTest, ReplayAppendsNothingToTheJournal) {
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  ReplayAll(shard, {Add("a", 1), Set("b", 2), Remove("a", -1)});
  EXPECT_TRUE(journal.records().empty());
  EXPECT_EQ(journal.waits(), 0);
}

// --- Checkpoint --------------------------------------------------------------

TEST(ShardJournalTest, CheckpointCallsRotateOnceAndItsSetRecordsReproduceTheState) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(0, clock.Fn(), &journal);
  Increment(shard, 5, Plain("a"));
  Increment(shard, -3, Plain("b"));
  Increment(shard, 0, Plain("zero"));
  Increment(shard, 2, Windowed("a", 60));
  Increment(shard, 9, Windowed("a", 3600));
  Increment(shard, 1, Windowed("c", 60));

  int rotations = 0;
  Result<std::vector<Record>> snapshot = shard.Checkpoint([&] {
    ++rotations;
    return Status();
  });
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().message();
  EXPECT_EQ(rotations, 1);
  for (const Record& record : *snapshot) EXPECT_EQ(record.kind, Record::Kind::kSet);
  EXPECT_EQ(snapshot->size(), shard.size());

  Shard restored(0, clock.Fn());
  ReplayAll(restored, *snapshot);
  const std::vector<CounterRef> counters = {Plain("a"),          Plain("b"),
                                            Plain("zero"),       Windowed("a", 60),
                                            Windowed("a", 3600), Windowed("c", 60)};
  EXPECT_EQ(Observe(restored, counters), Observe(shard, counters));
}

TEST(ShardJournalTest, CheckpointOfAnEmptyShardIsEmpty) {
  Shard shard(0);
  Result<std::vector<Record>> snapshot = shard.Checkpoint([] { return Status(); });
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().message();
  EXPECT_TRUE(snapshot->empty());
}

TEST(ShardJournalTest, CheckpointHoldsOffChangesFromRotateUntilTheSnapshotIsTaken) {
  // An increment started during rotate must land after the rotation point:
  // not in the snapshot, but in the journal after what rotate marked. Then
  // snapshot + the journal after the mark rebuild the shard exactly.
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  for (int i = 0; i < 40; ++i) Increment(shard, i, Plain("k" + std::to_string(i)));

  size_t mark = 0;
  std::thread writer;
  Result<std::vector<Record>> snapshot = shard.Checkpoint([&] {
    mark = journal.records().size();
    writer = std::thread([&shard] {
      for (int i = 0; i < 40; ++i) {
        EXPECT_TRUE(shard.Increment(Request(1000, Plain("k" + std::to_string(i)))).ok());
      }
    });
    return Status();
  });
  writer.join();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().message();
  EXPECT_EQ(mark, 40u);
  for (const Record& record : *snapshot) {
    EXPECT_LT(record.amount, 1000) << record.name << " changed after the rotation point";
  }

  std::vector<Record> after_mark = journal.records();
  after_mark.erase(after_mark.begin(), after_mark.begin() + static_cast<ptrdiff_t>(mark));
  EXPECT_EQ(after_mark.size(), 40u);
  Shard restored(0);
  ReplayAll(restored, *snapshot);
  ReplayAll(restored, after_mark);
  EXPECT_EQ(Sorted(restored.List("")), Sorted(shard.List("")));
  EXPECT_EQ(CountOf(restored, Plain("k39")), 1039);
}

TEST(ShardJournalTest, CheckpointReturnsRotatesFailureAndChangesNothing) {
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  Increment(shard, 5, Plain("a"));
  Result<std::vector<Record>> snapshot =
      shard.Checkpoint([] { return Internal("cannot create journal-2: no space left"); });
  ASSERT_FALSE(snapshot.ok());
  EXPECT_EQ(snapshot.status().code(), Code::kInternal);
  EXPECT_EQ(snapshot.status().message(), "cannot create journal-2: no space left");
  EXPECT_EQ(CountOf(shard, Plain("a")), 5);
  // The shard is unlocked again.
  Increment(shard, 1, Plain("a"));
  EXPECT_EQ(CountOf(shard, Plain("a")), 6);
}

// A journal whose writes wait until the test fails them all, the way a full
// disk fails the batch that a rotation flushes.
class FailLaterJournal : public Journal {
 public:
  std::shared_ptr<Ticket> Append(const Record&) override {
    std::lock_guard lock(mutex_);
    ++pending_;
    return std::make_shared<Ticket>();
  }
  Status Wait(const std::shared_ptr<Ticket>&) override {
    std::unique_lock lock(mutex_);
    waiting_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return failed_; });
    return Internal("no space left on device");
  }
  uint64_t failed_records() const override {
    std::lock_guard lock(mutex_);
    return failed_records_;
  }
  void AwaitWaiter() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return waiting_; });
  }
  // Fails every record appended so far (counted before any Wait returns).
  void FailPending() {
    std::lock_guard lock(mutex_);
    failed_records_ += pending_;
    pending_ = 0;
    failed_ = true;
    changed_.notify_all();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t pending_ = 0;
  uint64_t failed_records_ = 0;
  bool waiting_ = false;
  bool failed_ = false;
};

TEST(ShardJournalTest, CheckpointNeverSnapshotsAChangeWhoseWriteFailedDuringTheRotation) {
  // An increment is applied and queued; the rotation flushes it and the write
  // fails. Its caller hears of the failure and will undo it, but the undo
  // needs the shard's lock that the checkpoint holds: a snapshot taken now would
  // keep a change the caller was told failed, and a restart would bring it back.
  FailLaterJournal journal;
  Shard shard(0, nullptr, &journal);
  std::thread caller([&] {
    Result<IncrementReply> reply = shard.Increment(Request(5, Plain("a")));
    EXPECT_EQ(reply.status().code(), Code::kInternal);
  });
  journal.AwaitWaiter();
  Result<std::vector<Record>> snapshot = shard.Checkpoint([&] {
    journal.FailPending();
    return Status();
  });
  EXPECT_EQ(snapshot.status().code(), Code::kUnavailable);
  caller.join();
  EXPECT_EQ(CountOf(shard, Plain("a")), 0);
  // Once the change is undone, a checkpoint goes ahead, without it.
  Result<std::vector<Record>> later = shard.Checkpoint([] { return Status(); });
  ASSERT_TRUE(later.ok()) << later.status().message();
  EXPECT_THAT(*later, ::testing::Not(::testing::Contains(Set("a", 5))));
}

// --- Idempotency keys ----------------------------------------------------------

IncrementRequest Keyed(std::string key, int64_t value, CounterRef counter = {}) {
  return IncrementRequest{value, std::move(counter), std::move(key)};
}

Record KeyedAdd(std::string name, int64_t amount, std::string key, int64_t key_time, int64_t count,
                int64_t window = 0, int64_t window_start = 0) {
  Record record = Add(std::move(name), amount, window, window_start);
  record.key = std::move(key);
  record.key_time = key_time;
  record.count = count;
  return record;
}

// A journal whose Wait blocks until Release(), and says when one started.
class BlockingJournal : public Journal {
 public:
  std::shared_ptr<Ticket> Append(const Record&) override { return std::make_shared<Ticket>(); }
  Status Wait(const std::shared_ptr<Ticket>&) override {
    std::unique_lock lock(mutex_);
    waiting_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return released_; });
    return {};
  }
  void AwaitWaiter() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return waiting_; });
  }
  void Release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool waiting_ = false;
  bool released_ = false;
};

TEST(ShardKeyTest, KeyedIncrementJournalsItsKeyTimeAndAnswerInTheSameRecord) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(1, clock.Fn(), &journal);
  Increment(shard, 2, Plain("hits"));
  Result<IncrementReply> reply = shard.Increment(Keyed("k1", 5, Plain("hits")));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (IncrementReply{1, 7, 0}));
  EXPECT_EQ(journal.records(),
            (std::vector<Record>{Add("hits", 2), KeyedAdd("hits", 5, "k1", kT0, 7)}));
  EXPECT_EQ(journal.waits(), 2);
  EXPECT_EQ(shard.key_count(), 1u);
}

TEST(ShardKeyTest, RetryGetsTheFirstAnswerAndAppliesNothing) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(1, clock.Fn(), &journal);
  Result<IncrementReply> first = shard.Increment(Keyed("k1", 5, Windowed("api", 60)));
  ASSERT_TRUE(first.ok()) << first.status().message();
  Increment(shard, 3, Windowed("api", 60));  // the count moves on
  clock.now += 59;
  Result<IncrementReply> retry = shard.Increment(Keyed("k1", 5, Windowed("api", 60)));
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(*retry, *first);
  EXPECT_EQ(*retry, (IncrementReply{1, 5, kT0 + 60}));
  EXPECT_EQ(CountOf(shard, Windowed("api", 60)), 8);
  EXPECT_EQ(journal.records().size(), 2u);

  // Still the first answer once the counter's window has moved on: nothing
  // is counted into the new window.
  clock.now += 60;
  Result<IncrementReply> late = shard.Increment(Keyed("k1", 5, Windowed("api", 60)));
  ASSERT_TRUE(late.ok()) << late.status().message();
  EXPECT_EQ(*late, *first);
  EXPECT_EQ(CountOf(shard, Windowed("api", 60)), 0);
}

TEST(ShardKeyTest, KeyWithAnotherIncrementIsKeyReusedAndChangesNothing) {
  FakeJournal journal;
  Shard shard(2, nullptr, &journal);
  ASSERT_TRUE(shard.Increment(Keyed("k1", 5)).ok());
  Result<IncrementReply> other = shard.Increment(Keyed("k1", 6));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Code::kKeyReused);
  EXPECT_THAT(other.status().message(), HasSubstr("shard 2"));
  EXPECT_EQ(CountOf(shard, Plain("default")), 5);
  EXPECT_EQ(journal.records().size(), 1u);
}

TEST(ShardKeyTest, RetryWhileTheFirstWaitsForTheJournalIsInProgress) {
  BlockingJournal journal;
  Shard shard(0, nullptr, &journal);
  std::thread first([&] {
    Result<IncrementReply> reply = shard.Increment(Keyed("slow", 5));
    EXPECT_TRUE(reply.ok()) << reply.status().message();
  });
  journal.AwaitWaiter();
  Result<IncrementReply> retry = shard.Increment(Keyed("slow", 5));
  ASSERT_FALSE(retry.ok());
  EXPECT_EQ(retry.status().code(), Code::kInProgress);
  journal.Release();
  first.join();

  Result<IncrementReply> after = shard.Increment(Keyed("slow", 5));
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(after->count, 5);
  EXPECT_EQ(CountOf(shard, Plain("default")), 5);
}

TEST(ShardKeyTest, FailedJournalWriteKeepsNoKeySoTheRetryApplies) {
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  journal.fail = true;
  Result<IncrementReply> failed = shard.Increment(Keyed("k1", 5));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), Code::kInternal);
  EXPECT_EQ(shard.key_count(), 0u);

  journal.fail = false;
  Result<IncrementReply> retry = shard.Increment(Keyed("k1", 5));
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(retry->count, 5);
  EXPECT_EQ(CountOf(shard, Plain("default")), 5);
}

TEST(ShardKeyTest, OverflowingIncrementKeepsNoKey) {
  Shard shard(0);
  Increment(shard, kMax, Plain("big"));
  Result<IncrementReply> reply = shard.Increment(Keyed("k1", 1, Plain("big")));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kOutOfRange);
  EXPECT_EQ(shard.key_count(), 0u);
  Increment(shard, -1, Plain("big"));
  Result<IncrementReply> retry = shard.Increment(Keyed("k1", 1, Plain("big")));
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(retry->count, kMax);
}

TEST(ShardKeyTest, ReplayedKeyAnswersARetryWithoutApplyingIt) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(1, clock.Fn(), &journal);
  Result<IncrementReply> first = shard.Increment(Keyed("k1", 5, Windowed("api", 60)));
  ASSERT_TRUE(first.ok()) << first.status().message();
  Increment(shard, 2, Windowed("api", 60));

  // A restart: a new shard with the journal replayed.
  clock.now += 10;
  FakeJournal after_restart;
  Shard restarted(1, clock.Fn(), &after_restart);
  ReplayAll(restarted, journal.records());
  EXPECT_EQ(restarted.key_count(), 1u);
  Result<IncrementReply> retry = restarted.Increment(Keyed("k1", 5, Windowed("api", 60)));
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(*retry, *first);
  EXPECT_EQ(CountOf(restarted, Windowed("api", 60)), 7);
  EXPECT_TRUE(after_restart.records().empty());
  Result<IncrementReply> other = restarted.Increment(Keyed("k1", 6, Windowed("api", 60)));
  EXPECT_EQ(other.status().code(), Code::kKeyReused);
}

TEST(ShardKeyTest, ReplayedKeyRecordRemembersTheKeyAndCountsNothing) {
  FakeClock clock;
  Shard shard(0, clock.Fn());
  Record key = KeyedAdd("hits", 5, "k1", kT0, 12);
  key.kind = Record::Kind::kKey;
  ReplayAll(shard, {Set("hits", 12), key});
  EXPECT_EQ(CountOf(shard, Plain("hits")), 12);
  Result<IncrementReply> retry = shard.Increment(Keyed("k1", 5, Plain("hits")));
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(*retry, (IncrementReply{0, 12, 0}));
  EXPECT_EQ(CountOf(shard, Plain("hits")), 12);
}

TEST(ShardKeyTest, KeysOlderThanTheWindowAreNotReplayedAndAreDropped) {
  FakeClock clock;
  Shard shard(0, clock.Fn(), nullptr, /*key_window_seconds=*/60);
  ReplayAll(shard, {KeyedAdd("a", 1, "old", kT0 - 60, 1), KeyedAdd("a", 1, "new", kT0 - 59, 2)});
  EXPECT_EQ(CountOf(shard, Plain("a")), 2);  // the counts all replay
  EXPECT_EQ(shard.key_count(), 1u);
  EXPECT_EQ(shard.DropExpiredKeys(), 0u);
  clock.now += 1;
  EXPECT_EQ(shard.DropExpiredKeys(), 1u);
  EXPECT_EQ(shard.key_count(), 0u);
  // A forgotten key is a new key: applied again.
  Result<IncrementReply> again = shard.Increment(Keyed("new", 1, Plain("a")));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->count, 3);
}

TEST(ShardKeyTest, CheckpointKeepsKeysSoTheSnapshotAnswersRetries) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(0, clock.Fn(), &journal);
  ASSERT_TRUE(shard.Increment(Keyed("k1", 5, Plain("hits"))).ok());
  ASSERT_TRUE(shard.Increment(Keyed("k2", 3, Windowed("api", 60))).ok());
  Increment(shard, 1, Plain("hits"));

  Result<std::vector<Record>> snapshot = shard.Checkpoint([] { return Status(); });
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().message();
  size_t keys = 0;
  for (const Record& record : *snapshot) keys += record.kind == Record::Kind::kKey;
  EXPECT_EQ(keys, 2u);

  Shard restored(0, clock.Fn());
  ReplayAll(restored, *snapshot);
  EXPECT_EQ(CountOf(restored, Plain("hits")), 6);
  Result<IncrementReply> retry = restored.Increment(Keyed("k1", 5, Plain("hits")));
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(*retry, (IncrementReply{0, 5, 0}));
  Result<IncrementReply> windowed = restored.Increment(Keyed("k2", 3, Windowed("api", 60)));
  ASSERT_TRUE(windowed.ok()) << windowed.status().message();
  EXPECT_EQ(*windowed, (IncrementReply{0, 3, kT0 + 60}));
  EXPECT_EQ(CountOf(restored, Plain("hits")), 6);
  EXPECT_EQ(CountOf(restored, Windowed("api", 60)), 3);
}

TEST(ShardKeyTest, ConcurrentRetriesOfOneKeyApplyItOnce) {
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  constexpr int kThreads = 8;
  std::atomic<int> answered{0}, in_progress{0};
  std::mutex mutex;
  std::vector<int64_t> first_answer(200, 0);  // every key's answer, the same to every thread
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        Result<IncrementReply> reply =
            shard.Increment(Keyed("key-" + std::to_string(round), 1, Plain("c")));
        if (reply.ok()) {
          std::lock_guard lock(mutex);
          if (first_answer[round] == 0) first_answer[round] = reply->count;
          EXPECT_EQ(reply->count, first_answer[round]) << "key-" << round;
          ++answered;
        } else {
          EXPECT_EQ(reply.status().code(), Code::kInProgress) << reply.status().message();
          ++in_progress;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(CountOf(shard, Plain("c")), 200);
  EXPECT_EQ(journal.records().size(), 200u);
  EXPECT_EQ(answered + in_progress, kThreads * 200);
}

// --- Increments of many counters (IncrementMany) --------------------------------

ManyRequest Many(std::vector<ManyRequest::Item> items, int64_t window = 0, std::string key = "") {
  return ManyRequest{std::move(items), window, std::move(key)};
}

TEST(ShardManyTest, AppliesEveryItemAndJournalsThemAsOneGroupRecord) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(1, clock.Fn(), &journal);
  Increment(shard, 10, Plain("b"));
  Result<ManyReply> reply = shard.IncrementMany(Many({{"a", 1}, {"b", -3}, {"a", 4}, {"c", 0}}));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, (ManyReply{1, 4, 0}));
  EXPECT_EQ(Sorted(shard.List("")), (std::vector<CounterPart>{{"a", 5}, {"b", 7}, {"c", 0}}));
  std::vector<Record> records = journal.records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].kind, Record::Kind::kGroup);
  EXPECT_EQ(journal.waits(), 2);
  Result<std::vector<Record>> increments = GroupIncrements(records[1]);
  ASSERT_TRUE(increments.ok()) << increments.status().message();
  EXPECT_EQ(*increments,
            (std::vector<Record>{Add("a", 1), Add("b", -3), Add("a", 4), Add("c", 0)}));
  EXPECT_EQ(shard.increments_applied(), 2u);
}

TEST(ShardManyTest, WindowedItemsGoIntoTheCurrentWindow) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(0, clock.Fn(), &journal);
  Result<ManyReply> reply = shard.IncrementMany(Many({{"api:x", 2}, {"api:y", 3}}, 60));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->window_end, kT0 + 60);
  EXPECT_EQ(CountOf(shard, Windowed("api:x", 60)), 2);
  EXPECT_EQ(CountOf(shard, Windowed("api:y", 60)), 3);
  EXPECT_EQ(CountOf(shard, Plain("api:x")), 0);
  EXPECT_EQ(journal.records().at(0).window_start, kT0);
  clock.now += 60;
  EXPECT_EQ(CountOf(shard, Windowed("api:x", 60)), 0);
}

TEST(ShardManyTest, AnOverflowingItemRefusesTheWholeShareAndAppendsNothing) {
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  Increment(shard, kMax - 1, Plain("big"));
  const Observed before = Observe(shard, {Plain("big"), Plain("new")});
  // "new" is created, "big" takes 1 then overflows on the second: all undone.
  Result<ManyReply> reply =
      shard.IncrementMany(Many({{"new", 5}, {"big", 1}, {"new", 1}, {"big", 1}}));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kOutOfRange);
  EXPECT_THAT(reply.status().message(), HasSubstr("'big'"));
  EXPECT_THAT(reply.status().message(), HasSubstr("nothing of the batch's share was counted"));
  EXPECT_EQ(Observe(shard, {Plain("big"), Plain("new")}), before);
  EXPECT_EQ(journal.records().size(), 1u);
}

TEST(ShardManyTest, AFailedJournalWriteUndoesEveryItemAndKeepsNoKey) {
  FakeJournal journal;
  Shard shard(0, nullptr, &journal);
  Increment(shard, 7, Plain("a"));
  const Observed before = Observe(shard, {Plain("a"), Plain("b")});
  journal.fail = true;
  Result<ManyReply> reply = shard.IncrementMany(Many({{"a", 1}, {"b", 2}, {"b", 3}}, 0, "k1"));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kInternal);
  EXPECT_THAT(reply.status().message(), HasSubstr("batch"));
  EXPECT_EQ(Observe(shard, {Plain("a"), Plain("b")}), before);
  EXPECT_EQ(shard.key_count(), 0u);

  journal.fail = false;
  Result<ManyReply> retry = shard.IncrementMany(Many({{"a", 1}, {"b", 2}, {"b", 3}}, 0, "k1"));
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(CountOf(shard, Plain("a")), 8);
  EXPECT_EQ(CountOf(shard, Plain("b")), 5);
}

TEST(ShardManyTest, ARetryWithTheKeyGetsTheFirstAnswerAndAnotherShareIsKeyReused) {
  FakeJournal journal;
  Shard shard(3, nullptr, &journal);
  const ManyRequest first = Many({{"a", 1}, {"b", 2}}, 0, "batch-1");
  Result<ManyReply> reply = shard.IncrementMany(first);
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  Result<ManyReply> retry = shard.IncrementMany(first);
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(*retry, *reply);
  EXPECT_EQ(shard.key_replays(), 1u);
  for (const ManyRequest& other :
       {Many({{"a", 1}, {"b", 3}}, 0, "batch-1"), Many({{"a", 1}}, 0, "batch-1"),
        Many({{"a", 1}, {"b", 2}}, 60, "batch-1")}) {
    Result<ManyReply> reused = shard.IncrementMany(other);
    ASSERT_FALSE(reused.ok());
    EXPECT_EQ(reused.status().code(), Code::kKeyReused);
    EXPECT_THAT(reused.status().message(), HasSubstr("shard 3"));
  }
  // A single increment with the key is another increment too.
  EXPECT_EQ(shard.Increment(Keyed("batch-1", 1, Plain("a"))).status().code(), Code::kKeyReused);
  EXPECT_EQ(CountOf(shard, Plain("a")), 1);
  EXPECT_EQ(CountOf(shard, Plain("b")), 2);
  EXPECT_EQ(journal.records().size(), 1u);
}

TEST(ShardManyTest, ReplayOfItsRecordsAfterARestartKeepsCountsAndAnswersTheRetry) {
  FakeClock clock;
  FakeJournal journal;
  Shard shard(1, clock.Fn(), &journal);
  const ManyRequest keyed = Many({{"a", 1}, {"b", 2}, {"a", 3}}, 0, "batch-1");
  Result<ManyReply> first = shard.IncrementMany(keyed);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(shard.IncrementMany(Many({{"w", 4}}, 60)).ok());
  Increment(shard, 5, Plain("b"));

  Shard restarted(1, clock.Fn());
  ReplayAll(restarted, journal.records());
  const std::vector<CounterRef> names = {Plain("a"), Plain("b"), Windowed("w", 60)};
  EXPECT_EQ(Observe(restarted, names), Observe(shard, names));
  Result<ManyReply> retry = restarted.IncrementMany(keyed);
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(*retry, *first);
  EXPECT_EQ(CountOf(restarted, Plain("a")), 4);

  // And through a checkpoint: the key is a kKey record, the counts kSet.
  Result<std::vector<Record>> checkpoint = restarted.Checkpoint([] { return Status(); });
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  Shard again(1, clock.Fn());
  ReplayAll(again, *checkpoint);
  EXPECT_EQ(Observe(again, names), Observe(shard, names));
  Result<ManyReply> retried_again = again.IncrementMany(keyed);
  ASSERT_TRUE(retried_again.ok()) << retried_again.status().message();
  EXPECT_EQ(*retried_again, *first);
  EXPECT_EQ(again.IncrementMany(Many({{"a", 2}}, 0, "batch-1")).status().code(), Code::kKeyReused);
}

TEST(ShardManyTest, ReplayOfACorruptGroupIsInternal) {
  Record group;
  group.kind = Record::Kind::kGroup;
  group.items = "\x01";
  Shard shard(0);
  EXPECT_EQ(shard.Replay(group).code(), Code::kInternal);
}

}  // namespace
}  // namespace shardctl::core
