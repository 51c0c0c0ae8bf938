#include "core/topology.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

// A topology of `shards` shards with `owners[k]` owning shard k and the
// given live nodes.
Topology Make(const std::vector<std::string>& owners, const std::vector<std::string>& live) {
  Topology topology;
  topology.shards = static_cast<int>(owners.size());
  for (const std::string& id : live) topology.nodes.push_back({id, "http://" + id + ":3000"});
  for (size_t k = 0; k < owners.size(); ++k) {
    topology.shard.push_back({.shard = static_cast<int>(k), .owner = owners[k], .epoch = 1});
  }
  return topology;
}

// Applies the moves and returns each live node's load afterwards.
std::vector<int> LoadAfter(Topology topology, const std::vector<PlannedMove>& moves) {
  for (const PlannedMove& move : moves) {
    EXPECT_EQ(topology.shard[move.shard].owner, move.from);
    topology.shard[move.shard].owner = move.to;
  }
  return topology.Load();
}

TEST(TopologyTest, PlacementRoundTripsThroughItsEncoding) {
  ShardPlacement placement{.shard = 4, .owner = "n1", .epoch = 7, .moving_to = "n2"};
  Result<ShardPlacement> decoded = DecodePlacement(4, EncodePlacement(placement), 99);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  placement.revision = 99;
  EXPECT_EQ(*decoded, placement);
}

TEST(TopologyTest, FollowersAndTheInSyncSetRoundTripAndAreLeftOutWhenEmpty) {
  ShardPlacement placement{
      .shard = 1, .owner = "n1", .epoch = 3, .followers = {"n2", "n3"}, .in_sync = {"n3"}};
  Result<ShardPlacement> decoded = DecodePlacement(1, EncodePlacement(placement), 5);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  placement.revision = 5;
  EXPECT_EQ(*decoded, placement);
  EXPECT_EQ(EncodePlacement({.shard = 0, .owner = "n1", .epoch = 1}), R"({"epoch":1,"owner":"n1"})");
  EXPECT_FALSE(DecodePlacement(0, R"({"owner":"a","epoch":1,"followers":"b"})", 1).ok());
  EXPECT_FALSE(DecodePlacement(0, R"({"owner":"a","epoch":1,"inSync":[1]})", 1).ok());
}

TEST(TopologyTest, TheReplicationFactorIsInTheClusterKeyOnlyWhenAboveOne) {
  EXPECT_EQ(EncodeClusterSpec(4), R"({"shards":4})");
  EXPECT_EQ(*DecodeClusterSpec(EncodeClusterSpec(4, 3)), (ClusterSpec{4, 3}));
  EXPECT_EQ(*DecodeClusterSpec(R"({"shards":4})"), (ClusterSpec{4, 1}));
  EXPECT_FALSE(DecodeClusterSpec(R"({"shards":4,"replicas":4})").ok());
  EXPECT_FALSE(DecodeClusterSpec(R"({"shards":4,"replicas":0})").ok());
}

TEST(TopologyTest, FollowersGoToTheLiveNodesHoldingFewestCopies) {
  Topology topology = Make({"a", "a", "b"}, {"a", "b", "c"});
  topology.replicas = 2;
  topology.shard[1].followers = {"c"};
  // c holds one copy, b one (its own shard): b and c tie, b has the lower id;
  // a holds the shard itself.
  EXPECT_EQ(PlanFollowers(topology, topology.shard[0]), (std::vector<std::string>{"b"}));
  EXPECT_EQ(PlanFollowers(topology, topology.shard[1]), (std::vector<std::string>{"c"}));
  topology.replicas = 3;
  EXPECT_EQ(PlanFollowers(topology, topology.shard[2]), (std::vector<std::string>{"c", "a"}));
  // Never more copies than nodes.
  EXPECT_EQ(PlanFollowers(Make({"a"}, {"a"}), Make({"a"}, {"a"}).shard[0]).size(), 0u);
}

TEST(TopologyTest, ADeadFollowerOutOfSyncGivesWayButOneInSyncKeepsItsPlace) {
  Topology topology = Make({"a"}, {"a", "c"});
  topology.replicas = 2;
  topology.shard[0].followers = {"b"};  // b is not alive
  EXPECT_EQ(PlanFollowers(topology, topology.shard[0]), (std::vector<std::string>{"c"}));
  topology.shard[0].in_sync = {"b"};  // it may be the only copy of what a acknowledged
  EXPECT_EQ(PlanFollowers(topology, topology.shard[0]), (std::vector<std::string>{"b"}));
}

TEST(TopologyTest, NoMoveTargetsANodeThatKeepsAFollowerCopy) {
  Topology topology = Make({"a", "a", "a", "a"}, {"a", "b"});
  for (ShardPlacement& placement : topology.shard) placement.followers = {"b"};
  EXPECT_TRUE(PlanRebalance(topology).empty());
  EXPECT_FALSE(PlanDrain(topology, "a").ok());
}

TEST(TopologyTest, DecodersRefuseWhatShardctlDoesNotWrite) {
  for (const char* bad : {"", "[]", "{}", R"({"owner":1,"epoch":1})", R"({"owner":"a"})",
                          R"({"owner":"a","epoch":-1})", R"({"owner":"a","epoch":1,"movingTo":2})"}) {
    EXPECT_FALSE(DecodePlacement(0, bad, 1).ok()) << bad;
  }
  for (const char* bad : {"", R"({"shards":0})", R"({"shards":"3"})", R"({"shards":5000})"}) {
    EXPECT_FALSE(DecodeClusterSpec(bad).ok()) << bad;
  }
  EXPECT_FALSE(DecodeNode("n1", R"({"address":3})").ok());
}

TEST(TopologyTest, ParseFillsUnclaimedShardsAndSortsNodes) {
  KeyRange range{.kvs = {{ClusterKey(), EncodeClusterSpec(3), 1, 0},
                         {NodeKey("b"), EncodeNode({"b", "http://b:1"}), 3, 7},
                         {NodeKey("a"), EncodeNode({"a", "http://a:1"}), 2, 7},
                         {ShardKey(1), EncodePlacement({.shard = 1, .owner = "a", .epoch = 2}), 5,
                          0}},
                 .revision = 9};
  Result<Topology> topology = ParseTopology(range);
  ASSERT_TRUE(topology.ok()) << topology.status().message();
  EXPECT_EQ(topology->shards, 3);
  EXPECT_EQ(topology->revision, 9);
  ASSERT_EQ(topology->nodes.size(), 2u);
  EXPECT_EQ(topology->nodes[0].id, "a");
  ASSERT_EQ(topology->shard.size(), 3u);
  EXPECT_EQ(topology->shard[0].owner, "");
  EXPECT_EQ(topology->shard[0].revision, 0);
  EXPECT_EQ(topology->shard[1].owner, "a");
  EXPECT_EQ(topology->shard[1].revision, 5);
}

TEST(TopologyTest, ParseWithoutAClusterSaysHowToMakeOne) {
  Result<Topology> topology = ParseTopology(KeyRange{});
  ASSERT_FALSE(topology.ok());
  EXPECT_NE(topology.status().message().find("shardctl cluster init"), std::string::npos);
}

TEST(TopologyTest, NodeIdsAreShortAndPlain) {
  EXPECT_TRUE(ValidateNodeId("127.0.0.11:3000").ok());
  EXPECT_TRUE(ValidateNodeId("shardctl-0").ok());
  EXPECT_FALSE(ValidateNodeId("").ok());
  EXPECT_FALSE(ValidateNodeId("a/b").ok());
  EXPECT_FALSE(ValidateNodeId(std::string(129, 'a')).ok());
}

struct RebalanceCase {
  std::vector<std::string> owners;
  std::vector<std::string> live;
  size_t moves;
  std::vector<int> load;  // by live node id order
};

class RebalanceTest : public testing::TestWithParam<RebalanceCase> {};

TEST_P(RebalanceTest, SpreadsShardsEvenlyWithTheFewestMoves) {
  const RebalanceCase& c = GetParam();
  Topology topology = Make(c.owners, c.live);
  std::vector<PlannedMove> moves = PlanRebalance(topology);
  EXPECT_EQ(moves.size(), c.moves);
  EXPECT_EQ(LoadAfter(topology, moves), c.load);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RebalanceTest,
    testing::Values(
        // A new node takes its share from the one that had everything.
        RebalanceCase{{"a", "a", "a", "a", "a", "a"}, {"a", "b", "c"}, 4, {2, 2, 2}},
        RebalanceCase{{"a", "a", "a", "a", "a", "a", "a"}, {"a", "b", "c"}, 4, {3, 2, 2}},
        // Balanced already: nothing moves.
        RebalanceCase{{"a", "b", "c", "a", "b", "c"}, {"a", "b", "c"}, 0, {2, 2, 2}},
        RebalanceCase{{"a", "b", "a"}, {"a", "b"}, 0, {2, 1}},
        // A dead owner's shards stay where their data is.
        RebalanceCase{{"x", "x", "a", "a"}, {"a", "b"}, 1, {1, 1}}));

TEST(TopologyTest, RebalanceLeavesShardsThatAreMovingAlone) {
  Topology topology = Make({"a", "a", "a", "a"}, {"a", "b"});
  topology.shard[0].moving_to = "b";
  std::vector<PlannedMove> moves = PlanRebalance(topology);
  for (const PlannedMove& move : moves) EXPECT_NE(move.shard, 0);
}

TEST(TopologyTest, DrainMovesEveryShardOfTheNodeToTheLeastLoaded) {
  Topology topology = Make({"a", "a", "a", "b", "c", "c"}, {"a", "b", "c"});
  Result<std::vector<PlannedMove>> moves = PlanDrain(topology, "a");
  ASSERT_TRUE(moves.ok()) << moves.status().message();
  ASSERT_EQ(moves->size(), 3u);
  EXPECT_EQ(LoadAfter(topology, *moves), (std::vector<int>{0, 3, 3}));
}

TEST(TopologyTest, DrainRefusesADeadOrOnlyNode) {
  EXPECT_FALSE(PlanDrain(Make({"a"}, {"a"}), "a").ok());
  EXPECT_FALSE(PlanDrain(Make({"a", "b"}, {"b"}), "a").ok());
}

}  // namespace
}  // namespace shardctl::core
