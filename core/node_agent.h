// NodeAgent: keeps one node's place in a cluster. It registers the node
// under a lease and keeps the lease alive (registering again if it expired
// while the node was cut off or paused), claims shards nobody owns, applies
// the topology to the node's HostedShards after every change, and ends seals
// that stalled (a move whose mover died) with a Refence, which either gives
// the shard back to this node at a new epoch or, if the move was committed
// meanwhile, fails and lets the shard go. serve drives it from its threads;
// tests call it directly. Thread-safe.
#ifndef SHARDCTL_CORE_NODE_AGENT_H_
#define SHARDCTL_CORE_NODE_AGENT_H_

#include <chrono>
#include <functional>
#include <mutex>
#include <string>

#include "core/coord_store.h"
#include "core/hosted_shards.h"
#include "core/status.h"
#include "core/topology.h"
#include "core/topology_view.h"

namespace shardctl::core {

struct NodeAgentOptions {
  NodeInfo node;
  int64_t lease_ttl_seconds = 5;
  // A shard sealed this long by a move that did not finish is taken back.
  std::chrono::milliseconds stale_seal{10000};
  // Where the agent says what it did (one line each); nullptr: nowhere.
  std::function<void(const std::string&)> log = nullptr;
};

class NodeAgent {
 public:
  // REQUIRES: every argument outlives this.
  NodeAgent(CoordStore& store, HostedShards& shards, TopologyView& view, NodeAgentOptions options);

  // Grants a lease and creates the node's key, trying again until `wait`
  // has passed while the key of an earlier run of this node still exists
  // (its lease not expired yet). Returns OK, or why it could not join.
  Status Join(std::chrono::milliseconds wait);

  // Applies `topology`: claims the shards nobody owns, then reconciles every
  // shard with its placement.
  void OnTopology(const Topology& topology);

  // Reads shard `shard`'s placement from the store and applies it now.
  // Returns the store's failure, if any.
  Status ReconcileShard(int shard);

  // About once a second: refreshes the lease (joining again if it expired)
  // and takes back stalled seals.
  void Tick();

  // Revokes the lease, so the node shows as gone at once. Best effort.
  void Leave();

  // "" while the lease is kept; otherwise what went wrong.
  std::string lease_error() const;

 private:
  void Log(const std::string& line) const;
  Status Register();

  CoordStore& store_;
  HostedShards& shards_;
  TopologyView& view_;
  const NodeAgentOptions options_;
  mutable std::mutex mutex_;
  LeaseId lease_ = 0;
  std::string lease_error_;
  std::mutex reconcile_mutex_;  // one reconcile pass at a time
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_NODE_AGENT_H_
