// MoveShard: moves one shard to another node, online, as a sequence of
// compare-and-sets on its placement with copies in between:
//   1. BeginMove: the placement says the shard is moving to the new node.
//   2. Fetch: the new node copies a snapshot of the shard (counters and
//      idempotency keys) from the old one, which from then on keeps every
//      change it takes; writes go on meanwhile.
//   3. CatchUp: the old node seals the shard (from here on it serves nothing
//      of it: writes to this shard pause) and hands the changes since the
//      snapshot to the new node, which makes them durable.
//   4. CommitMove: one compare-and-set makes the new node the owner at the
//      next epoch. Both nodes are told to reconcile: the new one serves the
//      shard at that epoch (writes resume), the old one releases it.
// At every moment at most one node serves the shard, at one epoch, so no
// total ever counts it twice or leaves it out. If a step fails, Refence gives
// the shard back to its owner at a new epoch (which fences off the seal and
// the copy); if the mover dies, the old node does that itself once its seal
// has stalled (core/node_agent.h). Thread-safe as its arguments are.
#ifndef SHARDCTL_CORE_SHARD_MOVE_H_
#define SHARDCTL_CORE_SHARD_MOVE_H_

#include <chrono>
#include <functional>
#include <string>

#include "core/coord_store.h"
#include "core/status.h"
#include "core/topology.h"

namespace shardctl::core {

// What the mover asks of the nodes (over HTTP: net/move_client.h).
class MoveSteps {
 public:
  virtual ~MoveSteps() = default;
  // `to` copies the snapshot of `shard` from `from`, which holds it at `epoch`.
  virtual Status Fetch(const NodeInfo& to, int shard, const NodeInfo& from, int64_t epoch) = 0;
  // `to` has `from` seal the shard and applies the changes since the snapshot.
  virtual Status CatchUp(const NodeInfo& to, int shard, const NodeInfo& from, int64_t epoch) = 0;
  // `node` reads the shard's placement and applies it.
  virtual Status Reconcile(const NodeInfo& node, int shard) = 0;
};

struct MoveReport {
  int shard = 0;
  std::string from;
  std::string to;
  int64_t epoch = 0;                    // the epoch the new owner serves it at
  std::chrono::microseconds copy{0};    // Fetch: writes went on
  std::chrono::microseconds pause{0};   // CatchUp to the new owner serving: writes waited
};

// Moves `shard` to node `to`. A move of the same shard that did not finish
// (its mover died) is ended first. Returns the report, or why it did not
// move (kInvalidArgument for a move that makes no sense: no such node, the
// owner is not alive, already there; kInProgress when another mover changed
// the placement meanwhile; a node's or the store's failure otherwise), in
// which case the shard stays with its owner. `progress`, if set, hears each
// step as it starts.
Result<MoveReport> MoveShard(CoordStore& store, MoveSteps& steps, int shard, const std::string& to,
                             const std::function<void(const std::string&)>& progress = nullptr);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_SHARD_MOVE_H_
