#include "core/reshard.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

#include "core/aggregator.h"
#include "core/cluster_shard_client.h"
#include "core/memory_coord_store.h"
#include "core/shard.h"
#include "core/topology_store.h"
#include "core/topology_view.h"

namespace shardctl::core {
namespace {

using ::testing::HasSubstr;
using test::kMax;
using test::Plain;
using test::Windowed;

constexpr int64_t kNow = 1'700'000'000;

Record Set(std::string name, int64_t amount, int64_t window = 0, int64_t window_start = 0) {
  return {.kind = Record::Kind::kSet,
          .name = std::move(name),
          .window = window,
          .window_start = window_start,
          .amount = amount};
}

Record Key(std::string key, std::string name, int64_t amount, int64_t count,
           int64_t time = kNow) {
  return {.kind = Record::Kind::kKey,
          .name = std::move(name),
          .amount = amount,
          .key = std::move(key),
          .key_time = time,
          .count = count};
}

// Sum per (name, window, window start) over every shard's kSet records.
using Sums = std::map<std::tuple<std::string, int64_t, int64_t>, int64_t>;
Sums SumOf(const std::vector<std::vector<Record>>& shards) {
  Sums sums;
  for (const auto& shard : shards) {
    for (const Record& record : shard) {
      if (record.kind == Record::Kind::kSet) {
        sums[{record.name, record.window, record.window_start}] += record.amount;
      }
    }
  }
  return sums;
}

std::vector<std::vector<Record>> ManyOldShards(int count) {
  std::vector<std::vector<Record>> old(count);
  for (int k = 0; k < count; ++k) {
    old[k] = {Set("hits", 100 + k), Set("api", k + 1, 60, kNow - kNow % 60)};
    if (k % 2 == 0) old[k].push_back(Set("even", -k));
  }
  return old;
}

TEST(ReshardRecordsTest, GrowingKeepsOldShardKInNewShardKAndEveryCount) {
  std::vector<std::vector<Record>> old = ManyOldShards(3);
  Result<std::vector<std::vector<Record>>> resharded = ReshardRecords(old, 12);
  ASSERT_TRUE(resharded.ok()) << resharded.status().message();
  ASSERT_EQ(resharded->size(), 12u);
  EXPECT_EQ(SumOf(*resharded), SumOf(old));
  for (int k = 0; k < 3; ++k) EXPECT_EQ(SumOf({(*resharded)[k]}), SumOf({old[k]})) << k;
  for (int j = 3; j < 12; ++j) EXPECT_TRUE((*resharded)[j].empty()) << j;
}

TEST(ReshardRecordsTest, ShrinkingSumsTheOldShardsThatMeetInANewOne) {
  std::vector<std::vector<Record>> old = ManyOldShards(12);
  Result<std::vector<std::vector<Record>>> resharded = ReshardRecords(old, 5);
  ASSERT_TRUE(resharded.ok()) << resharded.status().message();
  ASSERT_EQ(resharded->size(), 5u);
  EXPECT_EQ(SumOf(*resharded), SumOf(old));
  // k mod 5: new shard 2 holds old shards 2 and 7; new shard 0, 0, 5 and 10.
  EXPECT_EQ(SumOf({(*resharded)[2]}), SumOf({old[2], old[7]}));
  EXPECT_EQ(SumOf({(*resharded)[0]}), SumOf({old[0], old[5], old[10]}));
}

TEST(ReshardRecordsTest, AnEndedWindowMeetingTheCurrentOneIsDropped) {
  const int64_t current = kNow - kNow % 60;
  std::vector<std::vector<Record>> old = {{Set("api", 5, 60, current)},
                                          {Set("api", 7, 60, current - 60)},
                                          {Set("api", 2, 60, current)}};
  Result<std::vector<std::vector<Record>>> resharded = ReshardRecords(old, 1);
  ASSERT_TRUE(resharded.ok()) << resharded.status().message();
  EXPECT_EQ(*resharded, (std::vector<std::vector<Record>>{{Set("api", 7, 60, current)}}));
}

TEST(ReshardRecordsTest, ASumBeyondInt64IsOutOfRangeNamingTheCounter) {
  std::vector<std::vector<Record>> old = {{Set("big", kMax)}, {Set("big", 1)}};
  Result<std::vector<std::vector<Record>>> resharded = ReshardRecords(old, 1);
  ASSERT_FALSE(resharded.ok());
  EXPECT_EQ(resharded.status().code(), Code::kOutOfRange);
  EXPECT_THAT(resharded.status().message(), HasSubstr("'big'"));
}

TEST(ReshardRecordsTest, EveryKeyGoesToEveryNewShardAsAnyValue) {
  // "single" was a keyed increment on old shard 1; "batch" a keyed batch
  // whose shares reached old shards 0 and 2.
  std::vector<std::vector<Record>> old = {
      {Set("hits", 3), Key("batch", "hits", 3, 3, kNow)},
      {Set("hits", 4), Key("single", "hits", 4, 4, kNow - 5)},
      {Set("hits", 5), Key("batch", "hits", 5, 5, kNow + 1)}};
  Result<std::vector<std::vector<Record>>> resharded = ReshardRecords(old, 4);
  ASSERT_TRUE(resharded.ok()) << resharded.status().message();
  for (int j = 0; j < 4; ++j) {
    std::map<std::string, Record> keys;
    for (const Record& record : (*resharded)[j]) {
      if (record.kind != Record::Kind::kSet) keys[record.key] = record;
    }
    ASSERT_EQ(keys.size(), 2u) << j;
    for (const auto& [key, record] : keys) {
      EXPECT_EQ(record.kind, Record::Kind::kAnyValueKey) << j << key;
      EXPECT_EQ(record.name, "hits");
      EXPECT_EQ(record.amount, 0);
    }
    EXPECT_EQ(keys["single"].count, 4);
    EXPECT_EQ(keys["single"].key_time, kNow - 5);
    // From the old shard whose counters came here, else the lowest.
    EXPECT_EQ(keys["batch"].count, j == 2 ? 5 : 3) << j;
  }
}

// The whole path in memory: increments through an aggregator over 3 shards,
// their checkpoints resharded to N', retries through an aggregator over the
// new shards.
class ReshardShardsTest : public ::testing::TestWithParam<std::pair<int, int>> {
 protected:
  static std::vector<std::unique_ptr<Shard>> MakeShards(int count) {
    std::vector<std::unique_ptr<Shard>> shards;
    for (int k = 0; k < count; ++k) {
      shards.push_back(std::make_unique<Shard>(k, [] { return kNow; }));
    }
    return shards;
  }
  static std::unique_ptr<Aggregator> Over(std::vector<std::unique_ptr<Shard>>& shards) {
    std::vector<std::unique_ptr<ShardClient>> clients;
    for (auto& shard : shards) clients.push_back(std::make_unique<LocalShardClient>(*shard));
    AggregatorOptions options;
    options.now = [] { return kNow; };
    return std::make_unique<Aggregator>(std::move(clients), std::move(options));
  }
  static int64_t Total(Aggregator& aggregator, const CounterRef& counter) {
    Result<TotalReply> total = aggregator.Total(counter, false);
    EXPECT_TRUE(total.ok()) << total.status().message();
    return total.ok() ? total->total : -1;
  }
};

TEST_P(ReshardShardsTest, RetriesGetTheirFirstAnswersAndTotalsDoNotMove) {
  const auto [from, to] = GetParam();
  std::vector<std::unique_ptr<Shard>> old = MakeShards(from);
  std::unique_ptr<Aggregator> before = Over(old);
  IncrementRequest single{7, Plain("hits"), "single-1"};
  BatchRequest batch{{3, 6, 10, 11}, Windowed("api", 60), "batch-1"};
  Result<IncrementReply> single_first = before->Increment(single);
  Result<BatchReply> batch_first = before->IncrementBatch(batch);
  ASSERT_TRUE(single_first.ok() && batch_first.ok());
  for (int64_t value = -20; value < 40; ++value) {
    ASSERT_TRUE(before->Increment({value, Plain("hits"), {}}).ok());
    ASSERT_TRUE(before->Increment({value * 3, Windowed("api", 60), {}}).ok());
  }
  const int64_t hits = Total(*before, Plain("hits"));
  const int64_t api = Total(*before, Windowed("api", 60));

  std::vector<std::vector<Record>> checkpoints;
  for (auto& shard : old) checkpoints.push_back(*shard->Checkpoint([] { return Status(); }));
  Result<std::vector<std::vector<Record>>> resharded = ReshardRecords(checkpoints, to);
  ASSERT_TRUE(resharded.ok()) << resharded.status().message();
  std::vector<std::unique_ptr<Shard>> fresh = MakeShards(to);
  for (int j = 0; j < to; ++j) {
    for (const Record& record : (*resharded)[j]) ASSERT_TRUE(fresh[j]->Replay(record).ok());
  }
  std::unique_ptr<Aggregator> after = Over(fresh);
  EXPECT_EQ(Total(*after, Plain("hits")), hits);
  EXPECT_EQ(Total(*after, Windowed("api", 60)), api);

  Result<IncrementReply> single_again = after->Increment(single);
  ASSERT_TRUE(single_again.ok()) << single_again.status().message();
  EXPECT_EQ(single_again->count, single_first->count);
  Result<BatchReply> batch_again = after->IncrementBatch(batch);
  ASSERT_TRUE(batch_again.ok()) << batch_again.status().message();
  EXPECT_EQ(batch_again->applied, batch_first->applied);
  EXPECT_EQ(Total(*after, Plain("hits")), hits);
  EXPECT_EQ(Total(*after, Windowed("api", 60)), api);
  // The key is still the same increment's: another counter is refused.
  Result<IncrementReply> reused = after->Increment({7, Plain("other"), "single-1"});
  ASSERT_FALSE(reused.ok());
  EXPECT_EQ(reused.status().code(), Code::kKeyReused);
  // New increments go by value mod N'.
  Result<IncrementReply> fresh_reply = after->Increment({to + 1, Plain("hits"), {}});
  ASSERT_TRUE(fresh_reply.ok());
  EXPECT_EQ(fresh_reply->shard_id, (to + 1) % to);
  EXPECT_EQ(Total(*after, Plain("hits")), hits + to + 1);
}

INSTANTIATE_TEST_SUITE_P(GrowAndShrink, ReshardShardsTest,
                         ::testing::Values(std::pair{3, 12}, std::pair{12, 5}, std::pair{3, 1},
                                           std::pair{1, 4}));

// --- The topology's side ----------------------------------------------------

Topology ThreeShards() {
  Topology topology;
  topology.shards = 3;
  for (int k = 0; k < 3; ++k) topology.shard.push_back({.shard = k, .owner = "n1", .epoch = k + 1});
  return topology;
}

TEST(PlanReshardTest, NewEpochIsAboveEveryOldOne) {
  Result<ReshardPlan> plan = PlanReshard(ThreeShards(), 12, "n1");
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(*plan, (ReshardPlan{.from = 3, .to = 12, .node = "n1", .epoch = 4}));
}

TEST(PlanReshardTest, RefusesALiveNodeAMoveTheSameCountAndOutOfRange) {
  Topology alive = ThreeShards();
  alive.nodes.push_back({"n2", "http://127.0.0.12:3000"});
  Topology moving = ThreeShards();
  moving.shard[1].moving_to = "n2";
  const std::vector<std::tuple<std::string, Topology, int, std::string>> cases = {
      {"a node alive", alive, 12, "node n2 is alive"},
      {"a move", moving, 12, "shard 1 is being moved"},
      {"the same count", ThreeShards(), 3, "has 3 shards already"},
      {"zero", ThreeShards(), 0, "1 to 1024 shards, not 0"},
      {"too many", ThreeShards(), kMaxClusterShards + 1, "not 1025"},
  };
  for (const auto& [what, topology, to, message] : cases) {
    Result<ReshardPlan> plan = PlanReshard(topology, to, "n1");
    ASSERT_FALSE(plan.ok()) << what;
    EXPECT_EQ(plan.status().code(), Code::kInvalidArgument) << what;
    EXPECT_THAT(plan.status().message(), HasSubstr(message)) << what;
  }
}

TEST(ReshardWritesTest, CommitSetsTheCountOwnsEveryShardAndDeletesTheRest) {
  MemoryCoordStore store;
  ASSERT_TRUE(InitCluster(store, 5).ok());
  Result<Topology> before = ReadTopology(store);
  ASSERT_TRUE(before.ok());
  for (int k = 0; k < 5; ++k) {
    ASSERT_TRUE(ClaimShard(store, before->shard[k], "n1").ok());
  }
  before = ReadTopology(store);
  ASSERT_TRUE(before.ok());
  Result<ReshardPlan> plan = PlanReshard(*before, 2, "n9");
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  Result<bool> committed = store.CommitIfUnchanged("/shardctl/", before->revision,
                                                   ReshardWrites(*plan));
  ASSERT_TRUE(committed.ok() && *committed);
  Result<Topology> after = ReadTopology(store);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(ReshardCommitted(*after, *plan));
  EXPECT_FALSE(ReshardCommitted(*before, *plan));
  Result<KeyRange> shard_keys = store.List("/shardctl/shards/");
  ASSERT_TRUE(shard_keys.ok());
  EXPECT_EQ(shard_keys->kvs.size(), 2u);
  // Every write at one revision.
  EXPECT_EQ(store.revision(), before->revision + 1);
}

TEST(ReshardWritesTest, ACommitAfterAnyChangeUnderThePrefixIsRefusedAndChangesNothing) {
  MemoryCoordStore store;
  ASSERT_TRUE(InitCluster(store, 3).ok());
  Result<Topology> before = ReadTopology(store);
  ASSERT_TRUE(before.ok());
  Result<ReshardPlan> plan = PlanReshard(*before, 6, "n1");
  ASSERT_TRUE(plan.ok());
  // A node joins after the read.
  Result<LeaseId> lease = store.GrantLease(5);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(RegisterNode(store, {"n2", "http://x:1"}, *lease).ok());
  const int64_t revision = store.revision();
  Result<bool> committed = store.CommitIfUnchanged("/shardctl/", before->revision,
                                                   ReshardWrites(*plan));
  ASSERT_TRUE(committed.ok());
  EXPECT_FALSE(*committed);
  EXPECT_EQ(store.revision(), revision);
  EXPECT_EQ(ReadTopology(store)->shards, 3);
}

// A process made for N shards never routes by N after a reshard.
TEST(TopologyViewTest, APinnedViewDropsATopologyOfAnotherShardCountAndStopsFollowing) {
  MemoryCoordStore store;
  ASSERT_TRUE(InitCluster(store, 3).ok());
  TopologyView view(store);
  ASSERT_TRUE(view.Refresh().ok());
  view.PinShardCount(3);
  ClusterShardClient client(0, view, [](int, const std::string&, int64_t) {
    return std::unique_ptr<ShardClient>();  // never reached
  });

  Result<ReshardPlan> plan = PlanReshard(*view.Get(), 12, "n1");
  ASSERT_TRUE(plan.ok());
  Result<bool> committed =
      store.CommitIfUnchanged("/shardctl/", view.Get()->revision, ReshardWrites(*plan));
  ASSERT_TRUE(committed.ok() && *committed);

  std::atomic<bool> stop{false};
  int changes = 0;
  view.Follow(stop, [&changes](const Topology&) { ++changes; });  // returns on its own
  EXPECT_EQ(changes, 0);
  EXPECT_EQ(view.Get(), nullptr);
  EXPECT_THAT(view.resharded(), HasSubstr("resharded from 3 to 12 shards"));
  EXPECT_TRUE(view.Refresh().ok());
  EXPECT_EQ(view.Get(), nullptr);
  Result<IncrementReply> refused = client.Increment({1, Plain("hits"), {}});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("restart it"));
}

}  // namespace
}  // namespace shardctl::core
