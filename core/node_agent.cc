#include "core/node_agent.h"

#include <thread>

#include <fmt/format.h>

#include "core/topology_store.h"

namespace shardctl::core {

NodeAgent::NodeAgent(CoordStore& store, HostedShards& shards, TopologyView& view,
                     NodeAgentOptions options)
    : store_(store), shards_(shards), view_(view), options_(std::move(options)) {}

void NodeAgent::Log(const std::string& line) const {
  if (options_.log && !line.empty()) options_.log(line);
}

std::string NodeAgent::lease_error() const {
  std::lock_guard lock(mutex_);
  return lease_error_;
}

Status NodeAgent::Register() {
  Result<LeaseId> lease = store_.GrantLease(options_.lease_ttl_seconds);
  if (!lease.ok()) return lease.status();
  Status registered = RegisterNode(store_, options_.node, *lease);
  if (!registered.ok()) {
    store_.RevokeLease(*lease);
    return registered;
  }
  std::lock_guard lock(mutex_);
  lease_ = *lease;
  lease_error_.clear();
  return {};
}

Status NodeAgent::Join(std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    Status joined = Register();
    if (joined.ok() || joined.code() != Code::kInProgress ||
        std::chrono::steady_clock::now() >= deadline) {
      return joined;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void NodeAgent::OnTopology(const Topology& topology) {
  std::lock_guard lock(reconcile_mutex_);
  for (const ShardPlacement& placement : topology.shard) {
    ShardPlacement current = placement;
    if (current.owner.empty()) {
      PlacementChange claimed = ClaimShard(store_, current, options_.node.id);
      if (!claimed.ok() || !*claimed) continue;  // another node claimed it, or no store now
      current = **claimed;
      Log(fmt::format("shard {}: claimed it at epoch {}", current.shard, current.epoch));
    }
    Log(shards_.Reconcile(current));
  }
}

Status NodeAgent::ReconcileShard(int shard) {
  Result<std::optional<KeyValue>> kv = store_.Get(ShardKey(shard));
  if (!kv.ok()) return kv.status();
  ShardPlacement placement{.shard = shard};
  if (*kv) {
    Result<ShardPlacement> decoded = DecodePlacement(shard, (*kv)->value, (*kv)->mod_revision);
    if (!decoded.ok()) return decoded.status();
    placement = *decoded;
  }
  std::lock_guard lock(reconcile_mutex_);
  Log(shards_.Reconcile(placement));
  return {};
}

void NodeAgent::Tick() {
  LeaseId lease;
  {
    std::lock_guard lock(mutex_);
    lease = lease_;
  }
  Status kept = lease != 0 ? store_.KeepAlive(lease) : Status(Code::kInvalidArgument, "no lease");
  if (kept.code() == Code::kInvalidArgument) {
    // Expired (the node was cut off or paused for longer than its lease):
    // join again, as the shards it holds are still its own until moved.
    Status joined = Register();
    if (joined.ok()) Log("lease had expired; registered again");
    kept = joined;
  }
  {
    std::lock_guard lock(mutex_);
    lease_error_ = kept.ok() ? "" : kept.message();
  }
  for (const HeldShard& stale : shards_.StaleSeals(options_.stale_seal)) {
    Result<std::optional<KeyValue>> kv = store_.Get(ShardKey(stale.shard));
    if (!kv.ok() || !*kv) continue;
    Result<ShardPlacement> placement =
        DecodePlacement(stale.shard, (*kv)->value, (*kv)->mod_revision);
    if (!placement.ok()) continue;
    if (placement->owner == options_.node.id) {
      // The move that sealed it never committed: take it back at a new
      // epoch (the compare fails if the move commits first).
      PlacementChange refenced = Refence(store_, *placement);
      if (refenced.ok() && *refenced) {
        Log(fmt::format("shard {}: the move that sealed it at epoch {} did not finish; taking it "
                        "back at epoch {}",
                        stale.shard, stale.epoch, (*refenced)->epoch));
      }
    }
    ReconcileShard(stale.shard);
  }
}

void NodeAgent::Leave() {
  LeaseId lease;
  {
    std::lock_guard lock(mutex_);
    lease = lease_;
    lease_ = 0;
  }
  if (lease != 0) store_.RevokeLease(lease);
}

}  // namespace shardctl::core
