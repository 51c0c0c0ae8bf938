// NodeAgent: keeps one node's place in a cluster. It registers the node
// under a lease and keeps the lease alive (registering again if it expired
// while the node was cut off or paused), claims shards nobody owns, applies
// the topology to the node's HostedShards after every change, and ends seals
// that stalled (a move whose mover died) with a Refence, which either gives
// the shard back to this node at a new epoch or, if the move was committed
// meanwhile, fails and lets the shard go. serve drives it from its threads;
// tests call it directly.
//
// With replication (a cluster of R > 1 copies) it also runs the node's part
// of it: as a primary it picks followers for its shards, takes followers
// that lag out of the in-sync set and puts those caught up back
// (TickReplication); as a follower it keeps a thread per copy that starts
// from the primary's snapshot and then fetches every change (ReplicaSource);
// and when a primary's node is gone (its lease expired), an in-sync follower
// promotes itself with a compare-and-set that raises the epoch. Thread-safe.
#ifndef SHARDCTL_CORE_NODE_AGENT_H_
#define SHARDCTL_CORE_NODE_AGENT_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/coord_store.h"
#include "core/hosted_shards.h"
#include "core/status.h"
#include "core/topology.h"
#include "core/topology_view.h"

namespace shardctl::core {

// How a follower reaches its primary (over HTTP: net/replica_client.h).
class ReplicaSource {
 public:
  virtual ~ReplicaSource() = default;
  // The primary at `address` starts follower `me` with a snapshot.
  virtual Result<HostedShards::FollowerStart> Start(const std::string& address, int shard,
                                                    int64_t epoch, const std::string& me) = 0;
  // The changes from `from` on in the primary's log `log_id`, waiting up to
  // `wait` for one to come.
  virtual Result<ReplicaBatch> Fetch(const std::string& address, int shard, int64_t epoch,
                                     const std::string& me, uint64_t log_id, uint64_t from,
                                     std::chrono::milliseconds wait) = 0;
};

struct NodeAgentOptions {
  NodeInfo node;
  int64_t lease_ttl_seconds = 5;
  // A shard sealed this long by a move that did not finish is taken back.
  std::chrono::milliseconds stale_seal{10000};
  // Where the agent says what it did (one line each); nullptr: nowhere.
  std::function<void(const std::string&)> log = nullptr;
  // Where followers fetch from; nullptr: this node keeps no follower copies.
  ReplicaSource* replicas = nullptr;
  // How long a follower's fetch waits for a change before it asks again.
  std::chrono::milliseconds fetch_wait{500};
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
  // Stops the follower threads.
  void Leave();

  // Often (every 100 ms or so): answers fetches that waited long enough,
  // and changes the in-sync set of the shards this node is primary of.
  void TickReplication();

  // Makes this node the primary of `shard` if it is an in-sync follower of
  // it (`shardctl cluster promote`; and on its own when the primary's node
  // is gone). Returns the new placement's epoch, or why not.
  Result<int64_t> Promote(int shard);

  ~NodeAgent();

  // "" while the lease is kept; otherwise what went wrong.
  std::string lease_error() const;

 private:
  void Log(const std::string& line) const;
  Status Register();
  // Gives each primary shard its followers, promotes this node where its
  // primary is gone, and runs a follower thread for each copy it keeps.
  void Replicate(const Topology& topology);
  // One follower thread's life: copy, then fetch until stopped.
  void Follow(int shard, const std::atomic<bool>& stop);
  // Changes the in-sync set of `shard`, primary here at `epoch`, by
  // `change` (which returns false for no change); then applies the
  // placement. kRefused: the store said no (or this node is not its primary
  // at `epoch` any more); kUnknown: no answer, or an unknown outcome.
  enum class InSyncChange { kDone, kRefused, kUnknown };
  InSyncChange ChangeInSync(int shard, int64_t epoch,
                            const std::function<bool(std::vector<std::string>&)>& change);

  struct Follower {
    std::atomic<bool> stop{false};
    std::thread thread;
  };
  std::mutex followers_mutex_;
  std::map<int, std::unique_ptr<Follower>> followers_;  // by shard

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
