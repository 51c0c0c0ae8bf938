// Topology: where each shard of a cluster lives, as kept in a CoordStore, and
// the rules that change it. Pure data and pure functions; thread-safe.
//
// The model:
// - A shard is a fixed slice of every counter (value mod N); N is fixed when
//   the cluster is made.
// - A node is one `shardctl serve --etcd` process; it hosts any number of
//   shards and is alive while its key (under a lease) exists.
// - Each shard has one owner and an epoch. The epoch grows with every change
//   of who may serve the shard, and every request a router sends names the
//   epoch it routed by: a node serves a shard only at the epoch it holds it
//   at, so a stale router, or an old owner, is refused (core/hosted_shards.h).
//
// - With replication (R > 1 copies of each shard), the owner is the shard's
//   primary: it alone serves it, and sends every change to its followers,
//   R - 1 other nodes that keep a copy. The followers that have every change
//   the primary acknowledged are the in-sync set (as Kafka's ISR): only one
//   of them may be promoted when the primary dies, and every promotion
//   raises the epoch (core/replica_log.h).
//
// Keys (values are JSON):
//   /shardctl/cluster          {"shards":N[,"replicas":R]}
//   /shardctl/nodes/<id>       {"address":"http://host:port"}, under the node's lease
//   /shardctl/shards/<k>       {"owner":"<id>","epoch":E[,"movingTo":"<id>"]
//                               [,"followers":["<id>",...]][,"inSync":["<id>",...]]}
#ifndef SHARDCTL_CORE_TOPOLOGY_H_
#define SHARDCTL_CORE_TOPOLOGY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/coord_store.h"
#include "core/status.h"

namespace shardctl::core {

inline constexpr std::string_view kTopologyPrefix = "/shardctl/";
inline constexpr int kMaxClusterShards = 1024;
inline constexpr int kMaxReplicas = 3;

std::string ClusterKey();
std::string NodeKey(std::string_view node_id);
std::string ShardKey(int shard);

struct NodeInfo {
  std::string id;
  std::string address;  // the node's URL, e.g. "http://127.0.0.11:3000"
  bool operator==(const NodeInfo&) const = default;
};

struct ShardPlacement {
  int shard = 0;
  std::string owner = {};  // a node id; "" while no node has claimed the shard
  int64_t epoch = 0;      // 0 until first claimed; then grows with every change
  std::string moving_to = {};  // while a move is under way: the node it goes to
  // With replication: the nodes that keep a copy besides the owner, and
  // those of them that have every change the owner acknowledged (in the
  // order they were added; in_sync is a subset of followers). Every change
  // of epoch empties in_sync: a follower starts each epoch from a snapshot.
  std::vector<std::string> followers = {};
  std::vector<std::string> in_sync = {};
  int64_t revision = 0;   // the key's mod revision in the store (not encoded)

  bool IsFollower(std::string_view node) const;
  bool IsInSync(std::string_view node) const;
  // The owner or a follower.
  bool HoldsCopy(std::string_view node) const { return owner == node || IsFollower(node); }
  bool operator==(const ShardPlacement&) const = default;
};

struct ClusterSpec {
  int shards = 0;
  int replicas = 1;  // copies of each shard: the owner and replicas - 1 followers
  bool operator==(const ClusterSpec&) const = default;
};

struct Topology {
  int shards = 0;
  int replicas = 1;
  std::vector<NodeInfo> nodes;           // the live nodes, by id
  std::vector<ShardPlacement> shard;     // shard[k] is shard k
  int64_t revision = 0;                  // the store revision it was read at

  // The live node with this id, or nullptr.
  const NodeInfo* FindNode(std::string_view id) const;
  // How many shards each live node owns, by node id order of `nodes`.
  std::vector<int> Load() const;
};

// A node id: 1 to 128 characters of [A-Za-z0-9._:-]. Returns kInvalidArgument
// saying what is wrong.
Status ValidateNodeId(std::string_view id);

std::string EncodeClusterSpec(int shards, int replicas = 1);
std::string EncodeNode(const NodeInfo& node);
std::string EncodePlacement(const ShardPlacement& placement);
// Decoders return kInvalidArgument naming the key when a value is not what
// shardctl writes.
Result<ClusterSpec> DecodeClusterSpec(std::string_view value);
Result<NodeInfo> DecodeNode(std::string_view node_id, std::string_view value);
Result<ShardPlacement> DecodePlacement(int shard, std::string_view value, int64_t revision);

// Builds the topology from every key under kTopologyPrefix. Returns
// kInvalidArgument when there is no cluster there (with what to run), or a
// key is unreadable.
Result<Topology> ParseTopology(const KeyRange& range);

// The followers `placement` should have: its followers, then, while there
// are fewer than replicas - 1 of them, live nodes holding no copy of it,
// each the one holding fewest copies of any shard (lowest id on a tie). A
// follower that is not alive and not in sync is replaced when another live
// node is free. Returns placement.followers when nothing changes.
std::vector<std::string> PlanFollowers(const Topology& topology, const ShardPlacement& placement);

// One shard to move from a node to another.
struct PlannedMove {
  int shard = 0;
  std::string from;
  std::string to;
  bool operator==(const PlannedMove&) const = default;
};

// The fewest moves after which every live node owns floor(N/n) or
// ceil(N/n) of the shards owned by live nodes. Shards whose owner is not
// alive are not moved (their data is on that node), nor shards already
// moving. Deterministic: moves go from the most loaded to the least loaded
// node, lowest shard first.
std::vector<PlannedMove> PlanRebalance(const Topology& topology);

// Moves every shard `node` owns to the other live nodes, each to the least
// loaded at that point. Returns kInvalidArgument when `node` is not alive or
// is the only live node.
Result<std::vector<PlannedMove>> PlanDrain(const Topology& topology, std::string_view node);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_TOPOLOGY_H_
