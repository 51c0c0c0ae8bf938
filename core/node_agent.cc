#include "core/node_agent.h"

#include <algorithm>
#include <set>
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

NodeAgent::~NodeAgent() { Leave(); }

void NodeAgent::OnTopology(const Topology& topology) {
  {
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
  Replicate(topology);
}

void NodeAgent::Replicate(const Topology& topology) {
  const std::string& me = options_.node.id;
  std::set<int> copies;
  if (topology.replicas > 1 && options_.replicas != nullptr) {
    for (const ShardPlacement& placement : topology.shard) {
      if (placement.owner == me && placement.moving_to.empty()) {
        std::vector<std::string> wanted = PlanFollowers(topology, placement);
        if (wanted != placement.followers) {
          PlacementChange changed = SetFollowers(store_, placement, wanted);
          if (changed.ok() && *changed) {
            std::string list;
            for (const std::string& node : wanted) list += (list.empty() ? "" : ", ") + node;
            Log(fmt::format("shard {}: followers {}", placement.shard, list));
            ReconcileShard(placement.shard);
          }
        }
      } else if (placement.IsFollower(me)) {
        copies.insert(placement.shard);
        if (!placement.owner.empty() && topology.FindNode(placement.owner) == nullptr &&
            placement.IsInSync(me)) {
          // The primary's node is gone (its lease expired): take over. Of
          // several followers in sync, the compare-and-set lets one win.
          Result<int64_t> promoted = Promote(placement.shard);
          if (promoted.ok()) copies.erase(placement.shard);
        }
      }
    }
  }
  std::vector<std::unique_ptr<Follower>> stopped;
  {
    std::lock_guard lock(followers_mutex_);
    for (auto it = followers_.begin(); it != followers_.end();) {
      if (copies.count(it->first) == 0) {
        it->second->stop = true;
        stopped.push_back(std::move(it->second));
        it = followers_.erase(it);
      } else {
        ++it;
      }
    }
    for (int shard : copies) {
      if (followers_.count(shard) != 0) continue;
      auto follower = std::make_unique<Follower>();
      Follower* raw = follower.get();
      follower->thread = std::thread([this, shard, raw] { Follow(shard, raw->stop); });
      followers_[shard] = std::move(follower);
    }
  }
  for (auto& follower : stopped) follower->thread.join();
}

void NodeAgent::Follow(int shard, const std::atomic<bool>& stop) {
  const std::string& me = options_.node.id;
  auto pause = [&stop](std::chrono::milliseconds wait) {
    const auto until = std::chrono::steady_clock::now() + wait;
    while (!stop.load() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  std::string last_error;
  auto report = [&](const std::string& error) {
    if (error != last_error && !error.empty()) Log(fmt::format("shard {}: {}", shard, error));
    last_error = error;
  };
  while (!stop.load()) {
    std::shared_ptr<const Topology> topology = view_.Get();
    if (!topology || shard >= topology->shards) {
      pause(std::chrono::milliseconds(200));
      continue;
    }
    const ShardPlacement& placement = topology->shard[shard];
    const NodeInfo* primary = topology->FindNode(placement.owner);
    if (!placement.IsFollower(me) || primary == nullptr) {
      pause(std::chrono::milliseconds(100));
      continue;
    }
    std::optional<HostedShards::FollowerPosition> position = shards_.Position(shard);
    if (!position || position->epoch != placement.epoch || position->log_id == 0) {
      // A copy the in-sync set still counts on stays until the primary
      // takes it out of that set.
      if (position && position->epoch == placement.epoch && placement.IsInSync(me)) {
        options_.replicas->Fetch(primary->address, shard, placement.epoch, me, 0, 0,
                                 std::chrono::milliseconds(0));  // tells the primary at once
        pause(std::chrono::milliseconds(100));
        view_.Refresh(topology->revision);
        continue;
      }
      Result<HostedShards::FollowerStart> start =
          options_.replicas->Start(primary->address, shard, placement.epoch, me);
      if (!start.ok()) {
        report(fmt::format("cannot copy from primary {}: {}", primary->id,
                           start.status().message()));
        if (start.status().code() == Code::kMoved) view_.Refresh(topology->revision);
        pause(std::chrono::milliseconds(200));
        continue;
      }
      Status began = shards_.BeginFollowing(shard, placement.epoch, *start);
      if (!began.ok()) {
        report(fmt::format("cannot make a follower copy: {}", began.message()));
        pause(std::chrono::milliseconds(500));
        continue;
      }
      last_error.clear();
      Log(fmt::format("shard {}: following {} at epoch {} from a snapshot of {} records", shard,
                      primary->id, placement.epoch, start->snapshot.size()));
      continue;
    }
    Result<ReplicaBatch> batch =
        options_.replicas->Fetch(primary->address, shard, position->epoch, me, position->log_id,
                                 position->next, options_.fetch_wait);
    if (!batch.ok()) {
      report(fmt::format("fetching from primary {}: {}", primary->id, batch.status().message()));
      if (batch.status().code() == Code::kOutOfRange) {
        shards_.ForgetPosition(shard);
      } else if (batch.status().code() == Code::kMoved) {
        view_.Refresh(topology->revision);
        pause(std::chrono::milliseconds(50));
      } else {
        pause(std::chrono::milliseconds(100));
      }
      continue;
    }
    Status applied = shards_.ApplyReplicated(shard, position->epoch, position->log_id, *batch);
    if (!applied.ok() && applied.code() != Code::kMoved) {
      report(fmt::format("cannot apply what primary {} sent: {}; starting again from a snapshot",
                         primary->id, applied.message()));
      shards_.ForgetPosition(shard);
    } else if (applied.ok()) {
      last_error.clear();
    }
  }
}

NodeAgent::InSyncChange NodeAgent::ChangeInSync(
    int shard, int64_t epoch, const std::function<bool(std::vector<std::string>&)>& change) {
  Result<std::optional<KeyValue>> kv = store_.Get(ShardKey(shard));
  if (!kv.ok() || !*kv) return InSyncChange::kUnknown;
  Result<ShardPlacement> placement = DecodePlacement(shard, (*kv)->value, (*kv)->mod_revision);
  if (!placement.ok()) return InSyncChange::kUnknown;
  if (placement->owner != options_.node.id || placement->epoch != epoch) {
    std::lock_guard lock(reconcile_mutex_);
    Log(shards_.Reconcile(*placement));  // no longer primary at that epoch here: fences it
    return InSyncChange::kRefused;
  }
  std::vector<std::string> in_sync = placement->in_sync;
  if (!change(in_sync)) {
    std::lock_guard lock(reconcile_mutex_);
    shards_.Reconcile(*placement);
    return InSyncChange::kDone;
  }
  PlacementChange changed = SetInSync(store_, *placement, in_sync);
  if (!changed.ok()) return InSyncChange::kUnknown;
  if (!*changed) return InSyncChange::kRefused;
  std::string list;
  for (const std::string& node : in_sync) list += (list.empty() ? "" : ", ") + node;
  Log(fmt::format("shard {}: in sync: {}", shard, list.empty() ? "none" : list));
  std::lock_guard lock(reconcile_mutex_);
  shards_.Reconcile(**changed);
  return InSyncChange::kDone;
}

void NodeAgent::TickReplication() {
  for (const HostedShards::PrimaryLog& primary : shards_.PrimaryLogs()) {
    ReplicaLog& log = *primary.log;
    log.Expire();
    std::vector<std::string> lagging = log.Lagging();
    if (!lagging.empty()) {
      InSyncChange changed =
          ChangeInSync(primary.shard, log.epoch(), [&lagging](std::vector<std::string>& in_sync) {
            std::erase_if(in_sync, [&](const std::string& node) {
              return std::find(lagging.begin(), lagging.end(), node) != lagging.end();
            });
            return true;  // written even if unchanged: the compare says it was read current
          });
      if (changed == InSyncChange::kDone) {
        for (const std::string& node : lagging) log.AbandonExpect(node);
      }
    }
    // Close behind: required from now on, so every change from here waits
    // for it; listed once it has the changes before that too.
    for (const std::string& node : log.CaughtUp()) log.ExpectInSync(node);
    for (const std::string& node : log.ReadyToList()) {
      InSyncChange changed =
          ChangeInSync(primary.shard, log.epoch(), [&node](std::vector<std::string>& in_sync) {
            if (std::find(in_sync.begin(), in_sync.end(), node) != in_sync.end()) return false;
            in_sync.push_back(node);
            return true;
          });
      // Unknown: it stays required until a read of the store says otherwise.
      if (changed == InSyncChange::kRefused) log.AbandonExpect(node);
    }
  }
}

Result<int64_t> NodeAgent::Promote(int shard) {
  Result<std::optional<KeyValue>> kv = store_.Get(ShardKey(shard));
  if (!kv.ok()) return kv.status();
  if (!*kv) return InvalidArgument(fmt::format("shard {} has no owner yet", shard));
  Result<ShardPlacement> placement = DecodePlacement(shard, (*kv)->value, (*kv)->mod_revision);
  if (!placement.ok()) return placement.status();
  const std::string& me = options_.node.id;
  if (placement->owner == me) {
    return InvalidArgument(fmt::format("node {} is shard {}'s primary already", me, shard));
  }
  if (!placement->IsInSync(me)) {
    return InvalidArgument(fmt::format(
        "node {} is not an in-sync follower of shard {} (it may lack acknowledged changes)", me,
        shard));
  }
  std::optional<HostedShards::FollowerPosition> position = shards_.Position(shard);
  if (!position || position->epoch != placement->epoch) {
    return InvalidArgument(fmt::format("node {} holds no copy of shard {} at epoch {}", me, shard,
                                       placement->epoch));
  }
  PlacementChange promoted = ::shardctl::core::Promote(store_, *placement, me);
  if (!promoted.ok()) return promoted.status();
  if (!*promoted) {
    return Status(Code::kInProgress,
                  fmt::format("shard {}'s placement changed meanwhile; nothing was promoted", shard));
  }
  Log(fmt::format("shard {}: promoted to primary at epoch {} (was {}'s)", shard,
                  (*promoted)->epoch, placement->owner));
  {
    std::lock_guard lock(reconcile_mutex_);
    Log(shards_.Reconcile(**promoted));
  }
  return (*promoted)->epoch;
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
  std::map<int, std::unique_ptr<Follower>> followers;
  {
    std::lock_guard lock(followers_mutex_);
    followers.swap(followers_);
  }
  for (auto& [shard, follower] : followers) follower->stop = true;
  for (auto& [shard, follower] : followers) follower->thread.join();
  LeaseId lease;
  {
    std::lock_guard lock(mutex_);
    lease = lease_;
    lease_ = 0;
  }
  if (lease != 0) store_.RevokeLease(lease);
}

}  // namespace shardctl::core
