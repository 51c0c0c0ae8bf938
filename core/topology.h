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
// Keys (values are JSON):
//   /shardctl/cluster          {"shards":N}
//   /shardctl/nodes/<id>       {"address":"http://host:port"}, under the node's lease
//   /shardctl/shards/<k>       {"owner":"<id>","epoch":E[,"movingTo":"<id>"]}
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
  int64_t revision = 0;   // the key's mod revision in the store (not encoded)
  bool operator==(const ShardPlacement&) const = default;
};

struct Topology {
  int shards = 0;
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

std::string EncodeClusterSpec(int shards);
std::string EncodeNode(const NodeInfo& node);
std::string EncodePlacement(const ShardPlacement& placement);
// Decoders return kInvalidArgument naming the key when a value is not what
// shardctl writes.
Result<int> DecodeClusterSpec(std::string_view value);
Result<NodeInfo> DecodeNode(std::string_view node_id, std::string_view value);
Result<ShardPlacement> DecodePlacement(int shard, std::string_view value, int64_t revision);

// Builds the topology from every key under kTopologyPrefix. Returns
// kInvalidArgument when there is no cluster there (with what to run), or a
// key is unreadable.
Result<Topology> ParseTopology(const KeyRange& range);

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
