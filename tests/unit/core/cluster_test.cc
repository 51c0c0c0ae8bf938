// A whole cluster in one process: a MemoryCoordStore for etcd, nodes made of
// HostedShards and a NodeAgent each, moves through in-process MoveSteps, and
// aggregator-side ClusterShardClients that reach the nodes' fences directly.
// Drives moves, races and failovers without a socket or a sleep.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/cluster_counter.h"
#include "core/cluster_shard_client.h"
#include "core/hosted_shards.h"
#include "core/memory_coord_store.h"
#include "core/node_agent.h"
#include "core/router.h"
#include "core/shard_move.h"
#include "core/topology_store.h"
#include "core/topology_view.h"
#include "store/node_storage.h"
#include "tests/unit/core/builders.h"

namespace shardctl::core {
namespace {

using test::KeyedRequest;
using test::Request;

struct Node {
  std::string id;
  store::MemoryShardStorage storage;
  std::unique_ptr<HostedShards> hosted;
  std::unique_ptr<TopologyView> view;
  std::unique_ptr<NodeAgent> agent;
};

class Cluster;

// Reaches shard `shard` at `epoch` on the node at `address`, in process.
class InProcessShardClient : public ShardClient {
 public:
  InProcessShardClient(Cluster& cluster, int shard, std::string address, int64_t epoch)
      : cluster_(cluster), shard_(shard), address_(std::move(address)), epoch_(epoch) {}
  Result<IncrementReply> Increment(const IncrementRequest& request) override;
  Result<CountReply> Count(const CounterRef& counter) override;
  Result<std::vector<CounterPart>> List(const std::string&) override {
    return Status(Code::kInternal, "not used");
  }
  Result<int64_t> Reset(const std::string&) override { return Status(Code::kInternal, "not used"); }
  std::string Describe() const override { return address_; }
  std::string Address() const override { return address_; }

 private:
  Cluster& cluster_;
  int shard_;
  std::string address_;
  int64_t epoch_;
};

class Cluster : public MoveSteps {
 public:
  explicit Cluster(int shards) : shards_(shards) {
    EXPECT_TRUE(InitCluster(store, shards).ok());
    router_view = std::make_unique<TopologyView>(store);
  }

  Node& Start(const std::string& id) {
    auto node = std::make_unique<Node>();
    node->id = id;
    node->hosted = std::make_unique<HostedShards>(node->storage, shards_);
    EXPECT_TRUE(node->hosted->Load(id).ok());
    node->view = std::make_unique<TopologyView>(store);
    node->agent = std::make_unique<NodeAgent>(
        store, *node->hosted, *node->view,
        NodeAgentOptions{.node = {id, "mem://" + id}, .lease_ttl_seconds = 5});
    EXPECT_TRUE(node->agent->Join(std::chrono::milliseconds(0)).ok());
    Node& started = *node;
    nodes[id] = std::move(node);
    Sync();
    return started;
  }

  // Every node reads the topology and applies it (what the watch does).
  void Sync() {
    for (auto& [id, node] : nodes) {
      ASSERT_TRUE(node->view->Refresh(INT64_MAX).ok());
      node->agent->OnTopology(*node->view->Get());
    }
    router_view->Refresh(INT64_MAX);
  }

  Node* ByAddress(const std::string& address) {
    for (auto& [id, node] : nodes) {
      if ("mem://" + id == address) return node.get();
    }
    return nullptr;
  }

  std::unique_ptr<ClusterShardClient> Router(int shard) {
    return std::make_unique<ClusterShardClient>(
        shard, *router_view,
        [this](int k, const std::string& address, int64_t epoch) {
          return std::make_unique<InProcessShardClient>(*this, k, address, epoch);
        },
        std::chrono::milliseconds(2000));
  }

  // MoveSteps, in process.
  Status Fetch(const NodeInfo& to, int shard, const NodeInfo& from, int64_t epoch) override {
    Result<std::vector<Record>> snapshot = nodes[from.id]->hosted->StartCopy(shard, epoch);
    if (!snapshot.ok()) return snapshot.status();
    if (fetch_hook) fetch_hook();
    return nodes[to.id]->hosted->Stage(shard, epoch, *snapshot);
  }
  Status CatchUp(const NodeInfo& to, int shard, const NodeInfo& from, int64_t epoch) override {
    if (fail_catch_up) return Unavailable("the new node went away");
    Result<std::vector<Record>> changes = nodes[from.id]->hosted->Seal(shard, epoch);
    if (!changes.ok()) return changes.status();
    if (drop_tail) changes->clear();  // the planted bug
    return nodes[to.id]->hosted->CatchUp(shard, epoch, *changes);
  }
  Status Reconcile(const NodeInfo& node, int shard) override {
    return nodes[node.id]->agent->ReconcileShard(shard);
  }

  // The total of the default counter over every shard, through the routers.
  int64_t Total() {
    int64_t total = 0;
    for (int k = 0; k < shards_; ++k) {
      Result<CountReply> count = Router(k)->Count(CounterRef());
      EXPECT_TRUE(count.ok()) << count.status().message();
      if (count.ok()) total += count->count;
    }
    return total;
  }

  MemoryCoordStore store;
  std::map<std::string, std::unique_ptr<Node>> nodes;
  std::unique_ptr<TopologyView> router_view;
  std::function<void()> fetch_hook;
  bool fail_catch_up = false;
  bool drop_tail = false;

 private:
  int shards_;
};

Result<IncrementReply> InProcessShardClient::Increment(const IncrementRequest& request) {
  Node* node = cluster_.ByAddress(address_);
  if (node == nullptr) return Unavailable(address_ + " is gone");
  return node->hosted->Serve<IncrementReply>(
      shard_, epoch_, [&](Shard& shard) { return shard.Increment(request); });
}

Result<CountReply> InProcessShardClient::Count(const CounterRef& counter) {
  Node* node = cluster_.ByAddress(address_);
  if (node == nullptr) return Unavailable(address_ + " is gone");
  return node->hosted->Count(shard_, epoch_, counter);
}

std::vector<HeldShard> Held(Node& node) { return node.hosted->List(); }

TEST(ClusterTest, TheFirstNodeClaimsEveryShardAtEpochOne) {
  Cluster cluster(4);
  Node& a = cluster.Start("a");
  std::vector<HeldShard> held = Held(a);
  ASSERT_EQ(held.size(), 4u);
  for (const HeldShard& shard : held) {
    EXPECT_EQ(shard.state, HoldState::kActive);
    EXPECT_EQ(shard.epoch, 1);
  }
  cluster.Start("b");
  EXPECT_TRUE(Held(*cluster.nodes["b"]).empty());
}

TEST(ClusterTest, ANodeRefusesEveryEpochButTheOneItHoldsTheShardAt) {
  Cluster cluster(2);
  Node& a = cluster.Start("a");
  auto increment = [&](int64_t epoch) {
    return a.hosted->Serve<IncrementReply>(0, epoch,
                                           [](Shard& shard) { return shard.Increment(Request(2)); });
  };
  EXPECT_TRUE(increment(1).ok());
  for (int64_t stale : {0, 2, 7}) {
    Result<IncrementReply> refused = increment(stale);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), Code::kMoved);
  }
  EXPECT_EQ(a.hosted->Count(0, 1, CounterRef())->count, 2);
}

TEST(ClusterTest, AMoveCarriesCountsKeysAndTheChangesMadeWhileCopying) {
  Cluster cluster(2);
  cluster.Start("a");
  cluster.Start("b");
  std::unique_ptr<ClusterShardClient> router = cluster.Router(0);
  ASSERT_TRUE(router->Increment(KeyedRequest(10, "k1")).ok());
  // Between the snapshot and the seal: must travel in the tail.
  cluster.fetch_hook = [&] {
    ASSERT_TRUE(router->Increment(KeyedRequest(5, "k2")).ok());
  };
  Result<MoveReport> moved = MoveShard(cluster.store, cluster, 0, "b");
  ASSERT_TRUE(moved.ok()) << moved.status().message();
  EXPECT_EQ(moved->epoch, 2);
  EXPECT_EQ(Held(*cluster.nodes["b"]), (std::vector<HeldShard>{{0, HoldState::kActive, 2}}));
  EXPECT_EQ(Held(*cluster.nodes["a"]), (std::vector<HeldShard>{{1, HoldState::kActive, 1}}));

  // The router still has epoch 1 cached at a: refused there, it re-reads
  // and reaches b, where both keys answer their first answer.
  Result<IncrementReply> retried = router->Increment(KeyedRequest(10, "k1"));
  ASSERT_TRUE(retried.ok()) << retried.status().message();
  EXPECT_EQ(retried->count, 10);
  Result<IncrementReply> second = router->Increment(KeyedRequest(5, "k2"));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->count, 15);
  EXPECT_EQ(cluster.Total(), 15);
}

TEST(ClusterTest, ACheckerCatchesAMoveThatDropsTheJournalTail) {
  Cluster cluster(2);
  cluster.Start("a");
  cluster.Start("b");
  std::unique_ptr<ClusterShardClient> router = cluster.Router(0);
  int64_t acknowledged = 0;
  cluster.fetch_hook = [&] {
    if (router->Increment(Request(4)).ok()) acknowledged += 4;
  };
  cluster.drop_tail = true;
  ASSERT_TRUE(MoveShard(cluster.store, cluster, 0, "b").ok());
  EXPECT_EQ(acknowledged, 4);
  EXPECT_NE(cluster.Total(), acknowledged) << "the planted bug went unnoticed";
}

TEST(ClusterTest, AFailedHandOverLeavesTheShardWithItsOwnerAtANewEpoch) {
  Cluster cluster(2);
  cluster.Start("a");
  cluster.Start("b");
  std::unique_ptr<ClusterShardClient> router = cluster.Router(0);
  ASSERT_TRUE(router->Increment(Request(6)).ok());
  cluster.fail_catch_up = true;
  Result<MoveReport> moved = MoveShard(cluster.store, cluster, 0, "b");
  ASSERT_FALSE(moved.ok());
  EXPECT_NE(moved.status().message().find("stays on a"), std::string::npos)
      << moved.status().message();
  EXPECT_EQ(Held(*cluster.nodes["a"])[0], (HeldShard{0, HoldState::kActive, 2}));
  EXPECT_TRUE(Held(*cluster.nodes["b"]).empty());  // the staged copy was dropped
  ASSERT_TRUE(router->Increment(Request(6)).ok());
  EXPECT_EQ(cluster.Total(), 12);
}

TEST(ClusterTest, ASealWhoseMoverDiedIsTakenBackByItsNode) {
  Cluster cluster(2);
  Node& a = cluster.Start("a");
  cluster.Start("b");
  Result<Topology> topology = ReadTopology(cluster.store);
  ASSERT_TRUE(topology.ok());
  // A mover that began, copied and sealed, then died.
  PlacementChange begun = BeginMove(cluster.store, topology->shard[0], "b");
  ASSERT_TRUE(begun.ok() && *begun);
  ASSERT_TRUE(cluster.Fetch({"b", "mem://b"}, 0, {"a", "mem://a"}, 1).ok());
  ASSERT_TRUE(cluster.CatchUp({"b", "mem://b"}, 0, {"a", "mem://a"}, 1).ok());
  EXPECT_EQ(Held(a)[0].state, HoldState::kSealed);

  NodeAgent impatient(cluster.store, *a.hosted, *a.view,
                      NodeAgentOptions{.node = {"a", "mem://a"},
                                       .stale_seal = std::chrono::milliseconds(0)});
  impatient.Tick();
  EXPECT_EQ(Held(a)[0], (HeldShard{0, HoldState::kActive, 2}));
  // The mover, back from the dead, cannot commit over it.
  PlacementChange late = CommitMove(cluster.store, **begun);
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(*late);
  cluster.Sync();
  EXPECT_TRUE(Held(*cluster.nodes["b"]).empty());
}

TEST(ClusterTest, TotalsStayExactWhileShardsMoveUnderLoad) {
  Cluster cluster(4);
  cluster.Start("a");
  cluster.Start("b");
  cluster.Start("c");
  std::atomic<bool> stop{false};
  std::atomic<int64_t> acknowledged{0};
  std::atomic<int64_t> unknown{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      std::vector<std::unique_ptr<ClusterShardClient>> routers;
      for (int k = 0; k < 4; ++k) routers.push_back(cluster.Router(k));
      for (int64_t i = 1; !stop.load(); ++i) {
        int64_t value = w * 1000 + i % 97 + 1;
        Result<IncrementReply> reply = routers[ShardFor(value, 4)]->Increment(Request(value));
        (reply.ok() ? acknowledged : unknown) += value;
      }
    });
  }
  Result<Topology> topology = ReadTopology(cluster.store);
  ASSERT_TRUE(topology.ok());
  for (const PlannedMove& move : PlanRebalance(*topology)) {
    Result<MoveReport> moved = MoveShard(cluster.store, cluster, move.shard, move.to);
    EXPECT_TRUE(moved.ok()) << moved.status().message();
  }
  stop = true;
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(unknown.load(), 0);  // a pause, never a failure
  EXPECT_EQ(cluster.Total(), acknowledged.load());
  ASSERT_TRUE(ReadTopology(cluster.store).ok());
  EXPECT_EQ(ReadTopology(cluster.store)->Load(), (std::vector<int>{2, 1, 1}));
}

TEST(ClusterTest, ATotalAsksEachNodeOnceAndFollowsAShardThatMoved) {
  Cluster cluster(6);
  cluster.Start("a");
  cluster.Start("b");
  Result<Topology> topology = ReadTopology(cluster.store);
  ASSERT_TRUE(topology.ok());
  for (const PlannedMove& move : PlanRebalance(*topology)) {
    ASSERT_TRUE(MoveShard(cluster.store, cluster, move.shard, move.to).ok());
  }
  std::vector<std::unique_ptr<ClusterShardClient>> routers;
  std::vector<ShardClient*> single;
  for (int k = 0; k < 6; ++k) {
    routers.push_back(cluster.Router(k));
    single.push_back(routers.back().get());
    ASSERT_TRUE(routers.back()->Increment(Request(k + 1)).ok());
  }
  std::mutex asked_mutex;  // the counter asks the nodes in parallel
  std::map<std::string, int> asked;
  ClusterCounter counter(
      *cluster.router_view,
      [&](const std::string& address, const std::vector<ShardAtEpoch>& shards,
          const CounterRef& ref) -> Result<std::vector<Result<CountReply>>> {
        {
          std::lock_guard lock(asked_mutex);
          ++asked[address];
        }
        std::vector<Result<CountReply>> parts;
        for (const ShardAtEpoch& one : shards) {
          parts.push_back(cluster.ByAddress(address)->hosted->Count(one.shard, one.epoch, ref));
        }
        return parts;
      },
      single);
  auto sum = [&] {
    int64_t total = 0;
    for (const Result<CountReply>& part : counter.CountEveryShard(CounterRef())) {
      EXPECT_TRUE(part.ok()) << part.status().message();
      total += part.ok() ? part->count : 0;
    }
    return total;
  };
  EXPECT_EQ(sum(), 21);
  EXPECT_EQ(asked, (std::map<std::string, int>{{"mem://a", 1}, {"mem://b", 1}}));
  // A move the counter's topology has not seen: that shard alone is asked
  // again through its router, which follows it.
  const std::string owner = ReadTopology(cluster.store)->shard[0].owner;
  ASSERT_TRUE(MoveShard(cluster.store, cluster, 0, owner == "a" ? "b" : "a").ok());
  EXPECT_EQ(sum(), 21);
}

TEST(ClusterTest, ShardEpochsHeaderRoundTripsAndRefusesJunk) {
  std::vector<ShardAtEpoch> shards = {{0, 3}, {4, 2}};
  EXPECT_EQ(FormatShardEpochs(shards), "0=3,4=2");
  Result<std::vector<ShardAtEpoch>> parsed = ParseShardEpochs({"0=3,4=2"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, shards);
  for (const char* bad : {"", "0", "0=", "=1", "a=1", "0=-1", "0=1,", "0=1;2=3", "5000=1"}) {
    EXPECT_FALSE(ParseShardEpochs({bad}).ok()) << bad;
  }
  EXPECT_FALSE(ParseShardEpochs({}).ok());
  EXPECT_FALSE(ParseShardEpochs({"0=1", "1=1"}).ok());
}

TEST(ClusterTest, AnExpiredLeaseIsTakenUpAgain) {
  int64_t now_ms = 0;
  MemoryCoordStore store([&now_ms] { return now_ms; });
  ASSERT_TRUE(InitCluster(store, 1).ok());
  store::MemoryShardStorage storage;
  HostedShards hosted(storage, 1);
  ASSERT_TRUE(hosted.Load("a").ok());
  TopologyView view(store);
  NodeAgent agent(store, hosted, view,
                  NodeAgentOptions{.node = {"a", "mem://a"}, .lease_ttl_seconds = 2});
  ASSERT_TRUE(agent.Join(std::chrono::milliseconds(0)).ok());
  now_ms = 10000;  // paused for longer than its lease
  store.ExpireLeases();
  EXPECT_EQ(ReadTopology(store)->nodes.size(), 0u);
  agent.Tick();
  EXPECT_EQ(agent.lease_error(), "");
  EXPECT_EQ(ReadTopology(store)->nodes.size(), 1u);
}

TEST(ClusterTest, AShardOwnedButMissingFromADurableNodeIsNotServedEmpty) {
  ShardPlacement placement{.shard = 0, .owner = "a", .epoch = 3};
  EXPECT_EQ(DecideShard(HoldState::kAbsent, 0, placement, "a", /*durable=*/true),
            ShardAction::kRefuseMissing);
  EXPECT_EQ(DecideShard(HoldState::kAbsent, 0, placement, "a", /*durable=*/false),
            ShardAction::kCreate);
  placement.epoch = 1;
  EXPECT_EQ(DecideShard(HoldState::kAbsent, 0, placement, "a", true), ShardAction::kCreate);
}

struct DecideCase {
  HoldState state;
  int64_t epoch;
  ShardPlacement placement;
  ShardAction action;
};

class DecideShardTest : public testing::TestWithParam<DecideCase> {};

TEST_P(DecideShardTest, FollowsTheTopology) {
  const DecideCase& c = GetParam();
  EXPECT_EQ(DecideShard(c.state, c.epoch, c.placement, "me", true), c.action);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DecideShardTest,
    testing::Values(
        // Held and still ours: nothing, or the new epoch after a Refence.
        DecideCase{HoldState::kActive, 2, {.owner = "me", .epoch = 2}, ShardAction::kNothing},
        DecideCase{HoldState::kActive, 2, {.owner = "me", .epoch = 3}, ShardAction::kActivate},
        DecideCase{HoldState::kSealed, 2, {.owner = "me", .epoch = 3}, ShardAction::kActivate},
        // Sealed for a move under way: wait.
        DecideCase{HoldState::kSealed, 2, {.owner = "me", .epoch = 2, .moving_to = "b"},
                   ShardAction::kNothing},
        // Moved away: release; an older word changes nothing.
        DecideCase{HoldState::kSealed, 2, {.owner = "b", .epoch = 3}, ShardAction::kRelease},
        DecideCase{HoldState::kActive, 2, {.owner = "b", .epoch = 2}, ShardAction::kNothing},
        // A staged copy: served once committed, dropped if the move ended otherwise.
        DecideCase{HoldState::kStaged, 2, {.owner = "me", .epoch = 3}, ShardAction::kActivate},
        DecideCase{HoldState::kStaged, 2, {.owner = "a", .epoch = 2, .moving_to = "me"},
                   ShardAction::kNothing},
        DecideCase{HoldState::kStaged, 2, {.owner = "a", .epoch = 3}, ShardAction::kDropStaged},
        DecideCase{HoldState::kStaged, 2, {.owner = "me", .epoch = 5}, ShardAction::kDropStaged},
        DecideCase{HoldState::kAbsent, 0, {.owner = "b", .epoch = 5}, ShardAction::kNothing},
        // Replication: a follower copies from its primary, and starts again
        // at every new epoch.
        DecideCase{HoldState::kAbsent, 0, {.owner = "a", .epoch = 5, .followers = {"me"}},
                   ShardAction::kFollow},
        DecideCase{HoldState::kFollowing, 5, {.owner = "a", .epoch = 5, .followers = {"me"}},
                   ShardAction::kNothing},
        DecideCase{HoldState::kFollowing, 4, {.owner = "a", .epoch = 5, .followers = {"me"}},
                   ShardAction::kFollow},
        DecideCase{HoldState::kStaged, 5, {.owner = "a", .epoch = 5, .followers = {"me"}},
                   ShardAction::kFollow},
        // Promoted: only from the epoch before; no longer a follower: drop it.
        DecideCase{HoldState::kFollowing, 5, {.owner = "me", .epoch = 6, .followers = {"a"}},
                   ShardAction::kActivate},
        DecideCase{HoldState::kFollowing, 4, {.owner = "me", .epoch = 6, .followers = {"a"}},
                   ShardAction::kRefuseMissing},
        DecideCase{HoldState::kFollowing, 5, {.owner = "a", .epoch = 5, .followers = {"b"}},
                   ShardAction::kRelease},
        // A primary whose follower took over follows it (from a snapshot).
        DecideCase{HoldState::kActive, 5, {.owner = "a", .epoch = 6, .followers = {"me"}},
                   ShardAction::kFollow}));

}  // namespace
}  // namespace shardctl::core
