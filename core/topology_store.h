// The topology's changes, each one compare-and-set on a CoordStore: making a
// cluster, registering a node under its lease, and every change of who owns
// a shard. A compare that fails (someone else changed the key since it was
// read) is reported as std::nullopt, never retried here: the caller re-reads
// and decides again. Thread-safe when the store is.
#ifndef SHARDCTL_CORE_TOPOLOGY_STORE_H_
#define SHARDCTL_CORE_TOPOLOGY_STORE_H_

#include <optional>
#include <string>

#include "core/coord_store.h"
#include "core/status.h"
#include "core/topology.h"

namespace shardctl::core {

// Makes a cluster of `shards` shards, none claimed yet. Returns
// kInvalidArgument when a cluster exists already (saying with how many
// shards), or the store's failure.
Status InitCluster(CoordStore& store, int shards, int replicas = 1);

// Reads every topology key at one revision. Returns the topology,
// kInvalidArgument when there is no cluster, or the store's failure.
Result<Topology> ReadTopology(CoordStore& store);

// Creates the node's key under `lease`. Returns OK; kInProgress when the key
// exists (a live node has this id, or a dead one whose lease has not expired
// yet: try again after the lease time); or the store's failure.
Status RegisterNode(CoordStore& store, const NodeInfo& node, LeaseId lease);

// Placement changes: each compares `current.revision` and returns the new
// placement (with its new revision), std::nullopt when the key changed since
// `current` was read, or the store's failure. Every change of who may serve
// the shard raises the epoch.
using PlacementChange = Result<std::optional<ShardPlacement>>;

// An unclaimed shard (owner "") becomes `node`'s, at epoch current.epoch + 1.
PlacementChange ClaimShard(CoordStore& store, const ShardPlacement& current,
                           const std::string& node);
// Marks a move of the shard to `to` as under way (same owner, same epoch).
PlacementChange BeginMove(CoordStore& store, const ShardPlacement& current,
                          const std::string& to);
// Hands the shard to current.moving_to, at epoch current.epoch + 1 (its
// followers stay, out of sync: they follow the new owner from a snapshot).
// REQUIRES: !current.moving_to.empty(), and it is not a follower.
PlacementChange CommitMove(CoordStore& store, const ShardPlacement& current);
// Ends a move that will not complete: the owner keeps the shard, at epoch
// current.epoch + 1, so that nothing done at the old epoch (a seal, a copy)
// can count any more.
PlacementChange Refence(CoordStore& store, const ShardPlacement& current);

// Replication (same epoch: who serves the shard does not change).
// Sets the followers (in_sync keeps those that stay).
PlacementChange SetFollowers(CoordStore& store, const ShardPlacement& current,
                             std::vector<std::string> followers);
// Sets the in-sync followers. REQUIRES: each is a follower.
PlacementChange SetInSync(CoordStore& store, const ShardPlacement& current,
                          std::vector<std::string> in_sync);
// Makes the in-sync follower `node` the owner at epoch current.epoch + 1;
// the old owner becomes a follower (out of sync, as every follower at a new
// epoch). REQUIRES: current.IsInSync(node).
PlacementChange Promote(CoordStore& store, const ShardPlacement& current,
                        const std::string& node);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_TOPOLOGY_STORE_H_
