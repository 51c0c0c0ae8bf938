#include "core/shard_move.h"

#include <fmt/format.h>

#include "core/topology_store.h"

namespace shardctl::core {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::microseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

Status Lost(int shard) {
  return Status(Code::kInProgress,
                fmt::format("shard {}'s placement changed while moving it (another move, or its "
                            "node took it back); nothing was moved",
                            shard));
}

}  // namespace

Result<MoveReport> MoveShard(CoordStore& store, MoveSteps& steps, int shard, const std::string& to,
                             const std::function<void(const std::string&)>& progress) {
  auto say = [&progress](const std::string& line) {
    if (progress) progress(line);
  };
  Result<Topology> topology = ReadTopology(store);
  if (!topology.ok()) return topology.status();
  if (shard < 0 || shard >= topology->shards) {
    return InvalidArgument(fmt::format("there is no shard {}: the cluster has shards 0..{}", shard,
                                       topology->shards - 1));
  }
  ShardPlacement placement = topology->shard[shard];
  const NodeInfo* target = topology->FindNode(to);
  if (target == nullptr) return InvalidArgument(fmt::format("node {} is not alive", to));
  if (placement.owner.empty()) {
    return InvalidArgument(fmt::format("shard {} has no owner yet; no node has claimed it", shard));
  }
  const NodeInfo* source = topology->FindNode(placement.owner);
  if (source == nullptr) {
    return InvalidArgument(fmt::format(
        "shard {}'s node {} is not alive; its data is there, so it can only move once that node "
        "is back",
        shard, placement.owner));
  }
  if (!placement.moving_to.empty()) {
    // An earlier move that did not finish: end it, then start afresh.
    say(fmt::format("shard {}: ending an unfinished move to {}", shard, placement.moving_to));
    PlacementChange ended = Refence(store, placement);
    if (!ended.ok()) return ended.status();
    if (!*ended) return Lost(shard);
    placement = **ended;
    steps.Reconcile(*source, shard);
    if (const NodeInfo* old = topology->FindNode(placement.moving_to)) steps.Reconcile(*old, shard);
  }
  if (placement.owner == to) {
    return InvalidArgument(fmt::format("shard {} is on node {} already", shard, to));
  }
  if (placement.IsFollower(to)) {
    return InvalidArgument(fmt::format(
        "node {} keeps a follower copy of shard {}: make it the primary with shardctl cluster "
        "promote {} --to {}",
        to, shard, shard, to));
  }
  const NodeInfo from = *source;
  const NodeInfo dest = *target;

  PlacementChange begun = BeginMove(store, placement, to);
  if (!begun.ok()) return begun.status();
  if (!*begun) return Lost(shard);
  placement = **begun;

  // From here on, any failure gives the shard back to its owner.
  auto abandon = [&](const Status& why) -> Result<MoveReport> {
    PlacementChange ended = Refence(store, placement);
    steps.Reconcile(from, shard);
    steps.Reconcile(dest, shard);
    if (ended.ok() && !*ended) return Lost(shard);
    return Status(why.code(), fmt::format("moving shard {} to {} failed, it stays on {}: {}",
                                          shard, to, from.id, why.message()));
  };

  MoveReport report{.shard = shard, .from = from.id, .to = to};
  say(fmt::format("shard {}: copying from {} to {}", shard, from.id, to));
  Clock::time_point start = Clock::now();
  if (Status fetched = steps.Fetch(dest, shard, from, placement.epoch); !fetched.ok()) {
    return abandon(fetched);
  }
  report.copy = Since(start);

  say(fmt::format("shard {}: handing over", shard));
  start = Clock::now();
  if (Status caught = steps.CatchUp(dest, shard, from, placement.epoch); !caught.ok()) {
    return abandon(caught);
  }
  PlacementChange committed = CommitMove(store, placement);
  if (!committed.ok()) {
    // Unknown whether it committed: the nodes read the placement and follow
    // whatever it says.
    steps.Reconcile(dest, shard);
    steps.Reconcile(from, shard);
    return Status(committed.status().code(),
                  fmt::format("shard {}: could not tell whether the hand-over to {} was recorded "
                              "({}); see shardctl cluster status",
                              shard, to, committed.status().message()));
  }
  if (!*committed) {
    steps.Reconcile(dest, shard);
    steps.Reconcile(from, shard);
    return Lost(shard);
  }
  Status served = steps.Reconcile(dest, shard);
  report.pause = Since(start);
  report.epoch = (*committed)->epoch;
  steps.Reconcile(from, shard);
  if (!served.ok()) {
    // Committed: the new node takes it up when it next reads the topology.
    say(fmt::format("shard {}: {} will serve it once it reads the topology ({})", shard, to,
                    served.message()));
  }
  return report;
}

}  // namespace shardctl::core
