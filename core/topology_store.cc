#include "core/topology_store.h"

#include <fmt/format.h>

namespace shardctl::core {
namespace {

// Writes `next` over `current` if the key is unchanged.
PlacementChange Replace(CoordStore& store, const ShardPlacement& current, ShardPlacement next) {
  Result<CasResult> cas =
      store.CompareAndSet(ShardKey(current.shard), current.revision, EncodePlacement(next));
  if (!cas.ok()) return cas.status();
  if (!cas->succeeded) return std::optional<ShardPlacement>();
  next.revision = cas->revision;
  return std::optional<ShardPlacement>(std::move(next));
}

}  // namespace

Status InitCluster(CoordStore& store, int shards, int replicas) {
  Result<CasResult> cas =
      store.CompareAndSet(ClusterKey(), 0, EncodeClusterSpec(shards, replicas));
  if (!cas.ok()) return cas.status();
  if (cas->succeeded) return {};
  Result<Topology> existing = ReadTopology(store);
  return InvalidArgument(
      existing.ok()
          ? fmt::format("a cluster of {} shards exists already in this etcd", existing->shards)
          : fmt::format("a cluster exists already in this etcd ({})", existing.status().message()));
}

Result<Topology> ReadTopology(CoordStore& store) {
  Result<KeyRange> range = store.List(std::string(kTopologyPrefix));
  if (!range.ok()) return range.status();
  return ParseTopology(*range);
}

Status RegisterNode(CoordStore& store, const NodeInfo& node, LeaseId lease) {
  Result<CasResult> cas = store.CompareAndSet(NodeKey(node.id), 0, EncodeNode(node), lease);
  if (!cas.ok()) return cas.status();
  if (cas->succeeded) return {};
  return Status(Code::kInProgress,
                fmt::format("node id {} is registered already: another node has it, or this "
                            "node's previous lease has not expired yet",
                            node.id));
}

PlacementChange ClaimShard(CoordStore& store, const ShardPlacement& current,
                           const std::string& node) {
  ShardPlacement next = current;
  next.owner = node;
  next.epoch = current.epoch + 1;
  next.moving_to.clear();
  return Replace(store, current, std::move(next));
}

PlacementChange BeginMove(CoordStore& store, const ShardPlacement& current,
                          const std::string& to) {
  ShardPlacement next = current;
  next.moving_to = to;
  return Replace(store, current, std::move(next));
}

PlacementChange CommitMove(CoordStore& store, const ShardPlacement& current) {
  ShardPlacement next = current;
  next.owner = current.moving_to;
  next.epoch = current.epoch + 1;
  next.moving_to.clear();
  next.in_sync.clear();
  return Replace(store, current, std::move(next));
}

PlacementChange Refence(CoordStore& store, const ShardPlacement& current) {
  ShardPlacement next = current;
  next.epoch = current.epoch + 1;
  next.moving_to.clear();
  next.in_sync.clear();
  return Replace(store, current, std::move(next));
}

PlacementChange SetFollowers(CoordStore& store, const ShardPlacement& current,
                             std::vector<std::string> followers) {
  ShardPlacement next = current;
  next.followers = std::move(followers);
  std::erase_if(next.in_sync, [&next](const std::string& node) { return !next.IsFollower(node); });
  return Replace(store, current, std::move(next));
}

PlacementChange SetInSync(CoordStore& store, const ShardPlacement& current,
                          std::vector<std::string> in_sync) {
  ShardPlacement next = current;
  next.in_sync = std::move(in_sync);
  return Replace(store, current, std::move(next));
}

PlacementChange Promote(CoordStore& store, const ShardPlacement& current,
                        const std::string& node) {
  ShardPlacement next = current;
  next.owner = node;
  next.epoch = current.epoch + 1;
  next.moving_to.clear();
  std::erase(next.followers, node);
  if (!current.owner.empty()) next.followers.push_back(current.owner);
  next.in_sync.clear();
  return Replace(store, current, std::move(next));
}

}  // namespace shardctl::core
