// Reshard: the pure part of `shardctl cluster reshard`, which changes a
// stopped cluster's shard count from N to N': which old shards may be
// resharded, what each new shard holds, and what etcd holds after. Pure
// functions; thread-safe.
//
// A count is a sum over the shards, so only the sum per counter matters:
// old shard k's counters go to new shard k mod N' (several summed when
// shrinking; growing keeps old shard k's part in new shard k). Idempotency
// keys go to EVERY new shard as "any value" keys (Record::kAnyValueKey): a
// retry after the reshard is split by value over N' shards, so its parts
// reach shards that never saw the key and carry values the key was not
// first seen with; each part gets the first answer back and nothing is
// applied.
#ifndef SHARDCTL_CORE_RESHARD_H_
#define SHARDCTL_CORE_RESHARD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/coord_store.h"
#include "core/record.h"
#include "core/status.h"
#include "core/topology.h"

namespace shardctl::core {

// What a reshard changes: the cluster's N (`from`) to N' (`to`), every new
// shard owned by `node` at `epoch`, above every epoch the old shards had.
struct ReshardPlan {
  int from = 0;
  int to = 0;
  std::string node;
  int replicas = 1;  // kept: followers are chosen again once nodes start
  int64_t epoch = 0;
  bool operator==(const ReshardPlan&) const = default;
};

// The plan for resharding `topology` to `to` shards owned by `node`.
// Returns kInvalidArgument, saying what to do, while any node is alive (its
// shards' data may change), while a move is under way, when `to` is the
// cluster's count already or outside 1..kMaxClusterShards.
Result<ReshardPlan> PlanReshard(const Topology& topology, int to, const std::string& node);

// The writes that make etcd hold the plan's cluster: {"shards":to}, shard
// keys 0..to-1 owned by plan.node at plan.epoch, keys to..from-1 deleted.
std::vector<KeyWrite> ReshardWrites(const ReshardPlan& plan);

// True when `topology` is what ReshardWrites makes (the commit happened).
bool ReshardCommitted(const Topology& topology, const ReshardPlan& plan);

// The new shards' records, new_shards[j] for j in 0..to-1, from the old
// shards' checkpoints (old_shards[k]: kSet, kKey and kAnyValueKey records,
// as Shard::Checkpoint returns them):
// - counters (kSet): old shard k's go to new shard k mod `to`; summed per
//   counter and window. Where old shards hold one windowed counter at
//   different window starts, the older window has ended (windows only move
//   forward) and is dropped, as Shard::Replay drops an older window.
// - keys: every key to every new shard as kAnyValueKey, with the counter,
//   window, first-seen time and answer (count) of one old shard's record of
//   it: one whose counters go to that new shard if any, else the lowest.
// Returns kOutOfRange naming the counter when a sum does not fit in 64 bits
// (nothing is made). REQUIRES: to >= 1; only those record kinds.
Result<std::vector<std::vector<Record>>> ReshardRecords(
    const std::vector<std::vector<Record>>& old_shards, int to);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_RESHARD_H_
