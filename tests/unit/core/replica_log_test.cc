#include "core/replica_log.h"

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/tap_journal.h"
#include "core/topology_store.h"
#include "core/memory_coord_store.h"

namespace shardctl::core {
namespace {

using std::chrono::milliseconds;

Record Add(int64_t amount) { return {.kind = Record::Kind::kAdd, .name = "c", .amount = amount}; }

// Fetches from `from` with no wait; returns the answer.
Result<ReplicaBatch> FetchNow(ReplicaLog& log, const std::string& follower, uint64_t from,
                              std::optional<uint64_t> log_id = std::nullopt) {
  std::optional<Result<ReplicaBatch>> answer;
  log.Fetch(follower, log_id.value_or(log.id()), from, milliseconds(0),
            [&answer](Result<ReplicaBatch> batch) { answer = std::move(batch); });
  EXPECT_TRUE(answer.has_value());
  return answer.value_or(Result<ReplicaBatch>(Internal("no answer")));
}

TEST(ReplicaLogTest, AChangeWaitsUntilEveryInSyncFollowerFetchedPastIt) {
  ReplicaLog log(0, 1, {});
  EXPECT_EQ(log.StartFollower("b"), 0u);
  EXPECT_EQ(log.StartFollower("c"), 0u);
  log.SetFollowers({"b", "c"}, {"b", "c"}, 1);
  const uint64_t seq = log.Append(Add(5));
  std::future<Status> waited = std::async(std::launch::async, [&] { return log.WaitReplicated(seq); });
  Result<ReplicaBatch> batch = FetchNow(log, "b", 0);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->records.size(), 1u);
  EXPECT_EQ(batch->records[0], Add(5));
  ASSERT_TRUE(FetchNow(log, "b", 1).ok());  // b has it
  EXPECT_EQ(waited.wait_for(milliseconds(50)), std::future_status::timeout);  // c has not
  ASSERT_TRUE(FetchNow(log, "c", 1).ok());
  EXPECT_TRUE(waited.get().ok());
}

TEST(ReplicaLogTest, WhenReplicatedAnswersOnTheFetchThatCompletesItAndOnAFence) {
  ReplicaLog log(0, 1, {});
  log.StartFollower("b");
  log.SetFollowers({"b"}, {"b"}, 1);
  std::vector<std::pair<uint64_t, Code>> answered;
  const uint64_t first = log.Append(Add(1));
  const uint64_t second = log.Append(Add(2));
  log.WhenReplicated(second, [&](Status s) { answered.emplace_back(second, s.code()); });
  log.WhenReplicated(first, [&](Status s) { answered.emplace_back(first, s.code()); });
  EXPECT_TRUE(answered.empty());
  ASSERT_TRUE(FetchNow(log, "b", 1).ok());  // b has the first only
  EXPECT_EQ(answered, (std::vector<std::pair<uint64_t, Code>>{{first, Code::kOk}}));
  ASSERT_TRUE(FetchNow(log, "b", 2).ok());
  ASSERT_EQ(answered.size(), 2u);
  EXPECT_EQ(answered[1], std::make_pair(second, Code::kOk));
  log.WhenReplicated(second, [&](Status s) { answered.emplace_back(9, s.code()); });  // at once
  EXPECT_EQ(answered.size(), 3u);
  log.WhenReplicated(log.Append(Add(3)), [&](Status s) { answered.emplace_back(3, s.code()); });
  log.Fence("a new epoch");
  EXPECT_EQ(answered.back(), std::make_pair(uint64_t{3}, Code::kTimeout));
}

TEST(ReplicaLogTest, ChangesAreKeptOnlyWhileAFollowerLacksThemAndAtMostMaxKept) {
  ReplicaLog log(0, 1, {.max_kept = 3});
  log.StartFollower("b");
  for (int i = 0; i < 5; ++i) log.Append(Add(i));
  log.Expire();  // trims to the last 3: b, 5 behind, must start again
  EXPECT_EQ(FetchNow(log, "b", 0).status().code(), Code::kOutOfRange);
  ASSERT_TRUE(FetchNow(log, "b", 2).ok());
  Result<ReplicaBatch> rest = FetchNow(log, "b", 2);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->records.size(), 3u);
}

TEST(ReplicaLogTest, FollowersOutOfSyncAndAckPrimaryAreNotWaitedFor) {
  ReplicaLog log(0, 1, {});
  log.StartFollower("b");
  log.SetFollowers({"b"}, {}, 1);
  EXPECT_TRUE(log.WaitReplicated(log.Append(Add(1))).ok());
  ReplicaLog primary(0, 1, {.ack = AckPolicy::kPrimary});
  primary.StartFollower("b");
  primary.SetFollowers({"b"}, {"b"}, 1);
  EXPECT_TRUE(primary.WaitReplicated(primary.Append(Add(1))).ok());
}

TEST(ReplicaLogTest, AFetchWithNothingNewWaitsForTheNextChangeOrItsTime) {
  ReplicaLog log(0, 1, {});
  log.StartFollower("b");
  std::optional<Result<ReplicaBatch>> answer;
  log.Fetch("b", log.id(), 0, milliseconds(60000),
            [&answer](Result<ReplicaBatch> batch) { answer = std::move(batch); });
  EXPECT_FALSE(answer.has_value());
  log.Append(Add(2));
  ASSERT_TRUE(answer.has_value() && answer->ok());
  EXPECT_EQ((*answer)->records.size(), 1u);

  answer.reset();
  log.Fetch("b", log.id(), 1, milliseconds(1),
            [&answer](Result<ReplicaBatch> batch) { answer = std::move(batch); });
  std::this_thread::sleep_for(milliseconds(5));  // past the fetch's wait
  log.Expire();
  ASSERT_TRUE(answer.has_value() && answer->ok());
  EXPECT_EQ((*answer)->first, 1u);
  EXPECT_TRUE((*answer)->records.empty());
}

TEST(ReplicaLogTest, AFollowerNotInThisLogStartsAgainAndIsOutOfSyncAtOnce) {
  ReplicaLog log(0, 1, {});
  log.StartFollower("b");
  log.SetFollowers({"b"}, {"b"}, 1);
  EXPECT_EQ(FetchNow(log, "b", 0, log.id() + 1).status().code(), Code::kOutOfRange);
  EXPECT_EQ(log.Lagging(), (std::vector<std::string>{"b"}));
  EXPECT_EQ(FetchNow(log, "x", 0).status().code(), Code::kOutOfRange);  // never started
  EXPECT_EQ(FetchNow(log, "b", 7).status().code(), Code::kOutOfRange);  // beyond the log
}

TEST(ReplicaLogTest, AFollowerBehindForLongerThanTheLagIsOutAndOneCaughtUpIsIn) {
  ReplicaLog log(0, 1, {.lag_max = milliseconds(20)});
  log.StartFollower("b");
  log.StartFollower("c");
  log.SetFollowers({"b", "c"}, {"b"}, 1);
  log.Append(Add(1));
  EXPECT_TRUE(log.Lagging().empty());
  std::this_thread::sleep_for(milliseconds(30));  // past the lag
  EXPECT_EQ(log.Lagging(), (std::vector<std::string>{"b"}));  // c is not required
  ASSERT_TRUE(FetchNow(log, "c", 1).ok());
  EXPECT_EQ(log.CaughtUp(), (std::vector<std::string>{"c"}));
}

TEST(ReplicaLogTest, ExpectInSyncRequiresAFollowerBeforeTheStoreListsIt) {
  ReplicaLog log(0, 1, {});
  log.StartFollower("b");
  log.Append(Add(1));
  EXPECT_FALSE(log.ExpectInSync("x"));  // not a follower here
  EXPECT_EQ(log.CaughtUp(), (std::vector<std::string>{"b"}));  // one change behind: close
  EXPECT_TRUE(log.ExpectInSync("b"));
  EXPECT_TRUE(log.CaughtUp().empty());     // required now
  EXPECT_TRUE(log.ReadyToList().empty());  // it lacks the change made before
  ASSERT_TRUE(FetchNow(log, "b", 1).ok());
  EXPECT_EQ(log.ReadyToList(), (std::vector<std::string>{"b"}));
  const uint64_t seq = log.Append(Add(1));
  std::future<Status> waited = std::async(std::launch::async, [&] { return log.WaitReplicated(seq); });
  EXPECT_EQ(waited.wait_for(milliseconds(50)), std::future_status::timeout);
  // A read of the store from before the change lists nothing: b stays required.
  log.SetFollowers({"b"}, {}, 1);
  EXPECT_EQ(waited.wait_for(milliseconds(20)), std::future_status::timeout);
  log.AbandonExpect("b");
  EXPECT_TRUE(waited.get().ok());
}

// Under steady writes a follower is always a batch behind when a tick looks
// (a fetch acknowledges what came before it): it still gets listed, and
// every change from the moment it was required waits for it.
TEST(ReplicaLogTest, AFollowerAlwaysABatchBehindIsListedOnceItHasWhatCameBeforeIt) {
  ReplicaLog log(0, 1, {});
  log.StartFollower("b");
  for (int i = 0; i < 3; ++i) log.Append(Add(1));
  ASSERT_TRUE(FetchNow(log, "b", 0).ok());
  ASSERT_EQ(log.CaughtUp(), (std::vector<std::string>{"b"}));  // 3 behind
  ASSERT_TRUE(log.ExpectInSync("b"));
  const uint64_t after = log.Append(Add(1));  // made while b is required
  std::future<Status> waited =
      std::async(std::launch::async, [&] { return log.WaitReplicated(after); });
  EXPECT_EQ(waited.wait_for(milliseconds(20)), std::future_status::timeout);
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(FetchNow(log, "b", 3).ok());  // what it had; more keeps coming
    log.Append(Add(1));
  }
  EXPECT_EQ(log.ReadyToList(), (std::vector<std::string>{"b"}));
  EXPECT_EQ(waited.wait_for(milliseconds(20)), std::future_status::timeout);  // change 3 is not on b
  ASSERT_TRUE(FetchNow(log, "b", after + 1).ok());
  EXPECT_TRUE(waited.get().ok());
}

TEST(ReplicaLogTest, AFollowerFarBehindIsNotRequiredYet) {
  ReplicaLog log(0, 1, {});
  log.StartFollower("b");
  for (uint64_t i = 0; i <= ReplicaLog::kCatchUpWindow; ++i) log.Append(Add(1));
  EXPECT_TRUE(log.CaughtUp().empty());
  ASSERT_TRUE(FetchNow(log, "b", 1).ok());
  EXPECT_EQ(log.CaughtUp(), (std::vector<std::string>{"b"}));
}

TEST(ReplicaLogTest, AnOlderPlacementNeverDropsAFollowerTheStoreListsInSync) {
  ReplicaLog log(0, 1, {});
  log.StartFollower("b");
  log.SetFollowers({"b"}, {"b"}, 10);
  log.SetFollowers({"b"}, {}, 9);  // read before: ignored
  const uint64_t seq = log.Append(Add(1));
  std::future<Status> waited = std::async(std::launch::async, [&] { return log.WaitReplicated(seq); });
  EXPECT_EQ(waited.wait_for(milliseconds(50)), std::future_status::timeout);
  log.SetFollowers({"b"}, {}, 11);  // the store took it out: the wait ends
  EXPECT_TRUE(waited.get().ok());
}

TEST(ReplicaLogTest, AFencedLogFailsWaitsAsUnknownAndFetchesAsMoved) {
  ReplicaLog log(0, 1, {});
  log.StartFollower("b");
  log.StartFollower("c");
  log.SetFollowers({"b", "c"}, {"b"}, 1);
  const uint64_t seq = log.Append(Add(1));
  std::optional<Result<ReplicaBatch>> parked;  // c's, which has the change; b has not
  log.Fetch("c", log.id(), 1, milliseconds(60000),
            [&parked](Result<ReplicaBatch> batch) { parked = std::move(batch); });
  std::future<Status> waited = std::async(std::launch::async, [&] { return log.WaitReplicated(seq); });
  log.Fence("a new epoch");
  EXPECT_EQ(waited.get().code(), Code::kTimeout);
  ASSERT_TRUE(parked.has_value());
  EXPECT_EQ(parked->status().code(), Code::kMoved);
  EXPECT_EQ(FetchNow(log, "b", 1).status().code(), Code::kMoved);
}

// A journal in front of a log: Wait covers the followers too, and a change
// whose replication ends unknown stands (kTimeout, nothing to undo).
TEST(ReplicaLogTest, ATapJournalWaitsForTheLogToo) {
  TapJournal journal(nullptr);
  auto log = std::make_shared<ReplicaLog>(0, 1, ReplicaLogOptions{});
  log->StartFollower("b");
  log->SetFollowers({"b"}, {"b"}, 1);
  journal.Replicate(log);
  std::shared_ptr<Journal::Ticket> ticket = journal.Append(Add(3));
  std::future<Status> waited =
      std::async(std::launch::async, [&] { return journal.Wait(ticket); });
  EXPECT_EQ(waited.wait_for(milliseconds(50)), std::future_status::timeout);
  ASSERT_TRUE(FetchNow(*log, "b", 1).ok());
  EXPECT_TRUE(waited.get().ok());
  ticket = journal.Append(Add(4));
  log->Fence("stopping");
  EXPECT_EQ(journal.Wait(ticket).code(), Code::kTimeout);
}

TEST(ReplicaLogTest, PromotionRaisesTheEpochAndTheOldPrimaryFollows) {
  MemoryCoordStore store;
  ASSERT_TRUE(InitCluster(store, 1, 2).ok());
  ShardPlacement placement = ReadTopology(store)->shard[0];
  placement = **ClaimShard(store, placement, "a");
  placement = **SetFollowers(store, placement, {"b"});
  EXPECT_EQ(ReadTopology(store)->replicas, 2);
  PlacementChange promoted = Promote(store, placement, "b");
  ASSERT_TRUE(promoted.ok() && *promoted);
  EXPECT_EQ((*promoted)->owner, "b");
  EXPECT_EQ((*promoted)->epoch, placement.epoch + 1);
  EXPECT_EQ((*promoted)->followers, (std::vector<std::string>{"a"}));
  EXPECT_TRUE((*promoted)->in_sync.empty());
  // A compare on the old revision fails: two promoters, one winner.
  EXPECT_FALSE(*Promote(store, placement, "b"));
  placement = **SetInSync(store, **promoted, {"a"});
  EXPECT_EQ(placement.in_sync, (std::vector<std::string>{"a"}));
  // Dropping a follower drops it from the in-sync set too.
  EXPECT_TRUE((**SetFollowers(store, placement, {})).in_sync.empty());
}

}  // namespace
}  // namespace shardctl::core
