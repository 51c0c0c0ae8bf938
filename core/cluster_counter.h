// ClusterCounter: a cluster aggregator's way to ask for every shard's part of
// a counter with one request per node rather than per shard: the shards are
// grouped by the node that owns them in the latest topology, each node is
// asked for all of its shards at once (naming each shard's epoch, fenced as
// any request), and a shard whose node could not answer for it (moved, or
// failed) is asked on its own through its ClusterShardClient, which follows
// the move. Thread-safe.
#ifndef SHARDCTL_CORE_CLUSTER_COUNTER_H_
#define SHARDCTL_CORE_CLUSTER_COUNTER_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/shard_client.h"
#include "core/topology_view.h"

namespace shardctl::core {

// One shard a node is asked about, and the epoch it was routed by.
struct ShardAtEpoch {
  int shard = 0;
  int64_t epoch = 0;
  bool operator==(const ShardAtEpoch&) const = default;
};

// The Shardctl-Epoch header of a node-wide count: "0=3,4=2".
std::string FormatShardEpochs(const std::vector<ShardAtEpoch>& shards);
// Parses the values of that header (exactly one). Returns the shards, or
// kInvalidArgument saying what is wrong.
Result<std::vector<ShardAtEpoch>> ParseShardEpochs(const std::vector<std::string>& values);

class ClusterCounter {
 public:
  // Asks the node at `address` for `counter` on each of `shards`. Returns
  // one result per shard, in order (kMoved for one it does not serve at
  // that epoch), or a failure for the whole request.
  using NodeCount = std::function<Result<std::vector<Result<CountReply>>>(
      const std::string& address, const std::vector<ShardAtEpoch>& shards,
      const CounterRef& counter)>;

  // `single[k]` asks shard k alone. REQUIRES: `view` and every
  // `single[k]` outlive this.
  ClusterCounter(TopologyView& view, NodeCount node_count, std::vector<ShardClient*> single);

  // Every shard's part of `counter`, in shard order.
  std::vector<Result<CountReply>> CountEveryShard(const CounterRef& counter);

 private:
  TopologyView& view_;
  const NodeCount node_count_;
  const std::vector<ShardClient*> single_;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_CLUSTER_COUNTER_H_
