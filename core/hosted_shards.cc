#include "core/hosted_shards.h"

#include <fmt/format.h>

namespace shardctl::core {

std::string_view HoldStateName(HoldState state) {
  switch (state) {
    case HoldState::kAbsent: return "absent";
    case HoldState::kActive: return "active";
    case HoldState::kSealed: return "sealed";
    case HoldState::kStaged: return "staged";
    case HoldState::kFollowing: return "following";
  }
  return "unknown";
}

ShardAction DecideShard(HoldState state, int64_t epoch, const ShardPlacement& placement,
                        const std::string& me, bool durable) {
  const bool mine = placement.owner == me;
  const bool follower = placement.IsFollower(me);
  switch (state) {
    case HoldState::kAbsent:
      if (follower) return ShardAction::kFollow;
      if (!mine) return ShardAction::kNothing;
      // A shard claimed at epoch 1 was never served anywhere before; at a
      // later epoch it was, and its data should be here.
      return placement.epoch == 1 || !durable ? ShardAction::kCreate
                                              : ShardAction::kRefuseMissing;
    case HoldState::kActive:
    case HoldState::kSealed:
      if (!mine) {
        // Every change of owner raises the epoch: an owner at a later epoch
        // took the shard from this node (a move it sealed for, or a
        // promotion of a follower; this node may be a follower now).
        if (placement.epoch <= epoch) return ShardAction::kNothing;
        return follower ? ShardAction::kFollow : ShardAction::kRelease;
      }
      if (!placement.moving_to.empty()) return ShardAction::kNothing;  // a move under way
      // Still this node's: at a later epoch after a move that did not
      // complete (Refence), or at its epoch when loaded after a restart.
      return state == HoldState::kSealed || placement.epoch != epoch ? ShardAction::kActivate
                                                                      : ShardAction::kNothing;
    case HoldState::kStaged:
      if (mine) {
        // Handed over: the commit raised the epoch it was copied at by one.
        return placement.epoch == epoch + 1 ? ShardAction::kActivate : ShardAction::kDropStaged;
      }
      if (placement.moving_to == me && placement.epoch == epoch) return ShardAction::kNothing;
      // A follower's copy cut short, or what is left of a move: start again.
      return follower ? ShardAction::kFollow : ShardAction::kDropStaged;
    case HoldState::kFollowing:
      if (mine) {
        // Promoted: only a follower in sync at the epoch before may be, and
        // every promotion raises the epoch by one.
        return placement.epoch == epoch + 1 ? ShardAction::kActivate
                                            : ShardAction::kRefuseMissing;
      }
      if (follower) return placement.epoch == epoch ? ShardAction::kNothing : ShardAction::kFollow;
      return ShardAction::kRelease;
  }
  return ShardAction::kNothing;
}

HostedShards::HostedShards(ShardStorage& storage, int shard_count)
    : storage_(storage), shard_count_(shard_count), slots_(shard_count) {}

std::string HostedShards::me() const {
  std::lock_guard lock(mutex_);
  return me_;
}

HostedShards::~HostedShards() = default;

std::shared_ptr<HostedShards::Slot> HostedShards::Get(int shard) const {
  std::lock_guard lock(mutex_);
  return slots_[shard];
}

void HostedShards::Put(int shard, std::shared_ptr<Slot> slot) {
  std::lock_guard lock(mutex_);
  slots_[shard] = std::move(slot);
}

Status HostedShards::CheckShard(int shard) const {
  if (shard < 0 || shard >= shard_count_) {
    return InvalidArgument(fmt::format("there is no shard {}: the cluster has shards 0..{}", shard,
                                       shard_count_ - 1));
  }
  return {};
}

Status HostedShards::Moved(int shard, int64_t epoch, const Slot* slot) const {
  std::string held = slot == nullptr ? "does not hold it"
                     : slot->state == HoldState::kStaged
                         ? "holds a copy that a move has not handed over yet"
                         : fmt::format("holds it {} at epoch {}", HoldStateName(slot->state),
                                       slot->epoch);
  return Status(Code::kMoved, fmt::format("node {} does not serve shard {} at epoch {}: it {}",
                                          me(), shard, epoch, held));
}

Status HostedShards::Load(std::string me) {
  {
    std::lock_guard lock(mutex_);
    me_ = std::move(me);
  }
  Result<std::vector<ShardStorage::Found>> found = storage_.Scan();
  if (!found.ok()) return found.status();
  for (const ShardStorage::Found& kept : *found) {
    if (Status valid = CheckShard(kept.shard); !valid.ok()) {
      return InvalidArgument(fmt::format(
          "the data directory holds shard {}, but {} (was the cluster resharded without this "
          "directory? Its counts are not the cluster's: move shard-{} away)",
          kept.shard, valid.message(), kept.shard));
    }
    Result<std::unique_ptr<KeptShard>> opened = storage_.Open(kept.shard);
    if (!opened.ok()) return opened.status();
    auto slot = std::make_shared<Slot>();
    slot->kept = std::move(*opened);
    if (kept.following_at) {
      // Its position in the primary's log is lost with the process: the
      // first fetch tells it to start again (keeping this copy until then).
      slot->state = HoldState::kFollowing;
      slot->epoch = *kept.following_at;
    } else {
      slot->state = kept.staged_from ? HoldState::kStaged : HoldState::kSealed;
      slot->epoch = kept.staged_from.value_or(0);
    }
    slot->sealed_at = std::chrono::steady_clock::now();
    Put(kept.shard, std::move(slot));
  }
  return {};
}

std::string HostedShards::Reconcile(const ShardPlacement& placement) {
  const int shard = placement.shard;
  if (!CheckShard(shard).ok()) return {};
  std::shared_ptr<Slot> slot = Get(shard);
  std::unique_lock<std::shared_mutex> lock;
  if (slot) {
    // Before the gate, which requests waiting for their followers hold: a
    // change of the in-sync set, or a later epoch, is what ends their wait.
    if (std::shared_ptr<ReplicaLog> log = slot->Log()) {
      if (placement.epoch > log->epoch()) {
        log->Fence(fmt::format("shard {} is at epoch {} now", shard, placement.epoch));
      } else if (placement.epoch == log->epoch() && placement.owner == me()) {
        log->SetFollowers(placement.followers, placement.in_sync, placement.revision);
      }
    }
    lock = std::unique_lock(slot->gate);
  }
  HoldState state = slot ? slot->state : HoldState::kAbsent;
  int64_t epoch = slot ? slot->epoch : 0;
  switch (DecideShard(state, epoch, placement, me(), storage_.durable())) {
    case ShardAction::kNothing:
      return {};  // a change of the in-sync set reached the log above, before the gate
    case ShardAction::kActivate: {
      if (state == HoldState::kStaged || state == HoldState::kFollowing) {
        if (Status marked = slot->kept->MarkActive(); !marked.ok()) {
          return fmt::format("shard {}: cannot take it over: {}", shard, marked.message());
        }
      }
      slot->state = HoldState::kActive;
      slot->epoch = placement.epoch;
      StartLog(shard, *slot, &placement);
      return fmt::format("shard {}: serving it at epoch {}{}", shard, placement.epoch,
                         state == HoldState::kFollowing ? " (promoted from follower)" : "");
    }
    case ShardAction::kFollow: {
      if (state == HoldState::kActive || state == HoldState::kSealed) {
        // A primary no more: what it took at its epoch that the new
        // primary lacks was never acknowledged; set it aside.
        StartLog(shard, *slot, nullptr);
        slot->kept->Retire();
        slot->state = HoldState::kAbsent;
        Put(shard, nullptr);
      } else if (slot) {
        // A copy of an earlier epoch stays (not served) until the new one
        // is made: BeginFollowing replaces it.
        slot->follow_log = 0;
      }
      return fmt::format("shard {}: following node {} at epoch {}", shard, placement.owner,
                         placement.epoch);
    }
    case ShardAction::kCreate: {
      Result<std::unique_ptr<KeptShard>> created = storage_.Create(shard, std::nullopt);
      if (!created.ok()) return fmt::format("shard {}: {}", shard, created.status().message());
      auto fresh = std::make_shared<Slot>();
      fresh->kept = std::move(*created);
      fresh->state = HoldState::kActive;
      fresh->epoch = placement.epoch;
      StartLog(shard, *fresh, &placement);
      Put(shard, std::move(fresh));
      return fmt::format("shard {}: serving it (new) at epoch {}", shard, placement.epoch);
    }
    case ShardAction::kRefuseMissing:
      return fmt::format(
          "shard {} is this node's at epoch {}, but its data is not in this data directory: not "
          "serving it (restore the directory, or move the shard here from where its data is)",
          shard, placement.epoch);
    case ShardAction::kRelease:
    case ShardAction::kDropStaged: {
      StartLog(shard, *slot, nullptr);
      slot->kept->Retire();
      slot->state = HoldState::kAbsent;  // requests that held a pointer see it gone
      Put(shard, nullptr);
      return fmt::format("shard {}: {} (node {} has it at epoch {})", shard,
                         state == HoldState::kStaged ? "dropped a copy whose move did not complete"
                                                      : "released it",
                         placement.owner, placement.epoch);
    }
  }
  return {};
}

Result<std::vector<Record>> HostedShards::StartCopy(int shard, int64_t epoch) {
  return WithActive<std::vector<Record>>(shard, epoch, [](Slot& slot) {
    TapJournal& journal = slot.kept->journal();
    return slot.kept->shard().Checkpoint([&journal] {
      journal.OpenTap();
      return Status();
    });
  });
}

Result<std::vector<Record>> HostedShards::Seal(int shard, int64_t epoch) {
  if (Status valid = CheckShard(shard); !valid.ok()) return valid;
  std::shared_ptr<Slot> slot = Get(shard);
  if (!slot) return Moved(shard, epoch, nullptr);
  std::unique_lock lock(slot->gate);  // waits for requests in flight
  const bool held = slot->state == HoldState::kActive || slot->state == HoldState::kSealed;
  if (!held || slot->epoch != epoch) return Moved(shard, epoch, slot.get());
  if (slot->state == HoldState::kActive) {
    slot->state = HoldState::kSealed;
    slot->sealed_at = std::chrono::steady_clock::now();
  }
  return slot->kept->journal().CloseTap();
}

Status HostedShards::Stage(int shard, int64_t epoch, const std::vector<Record>& snapshot) {
  if (Status valid = CheckShard(shard); !valid.ok()) return valid;
  if (std::shared_ptr<Slot> old = Get(shard)) {
    std::unique_lock lock(old->gate);
    if (old->state != HoldState::kStaged) {
      return InvalidArgument(fmt::format("node {} holds shard {} {} already", me(), shard,
                                         HoldStateName(old->state)));
    }
    old->kept->Retire();
    old->state = HoldState::kAbsent;
    Put(shard, nullptr);
  }
  Result<std::unique_ptr<KeptShard>> created = storage_.Create(shard, epoch);
  if (!created.ok()) return created.status();
  auto slot = std::make_shared<Slot>();
  slot->kept = std::move(*created);
  slot->state = HoldState::kStaged;
  slot->epoch = epoch;
  Put(shard, slot);
  return CatchUp(shard, epoch, snapshot);
}

Status HostedShards::CatchUp(int shard, int64_t epoch, const std::vector<Record>& changes) {
  if (Status valid = CheckShard(shard); !valid.ok()) return valid;
  std::shared_ptr<Slot> slot = Get(shard);
  if (!slot) return Moved(shard, epoch, nullptr);
  std::unique_lock lock(slot->gate);
  if (slot->state != HoldState::kStaged || slot->epoch != epoch) {
    return Moved(shard, epoch, slot.get());
  }
  Shard& target = slot->kept->shard();
  TapJournal& journal = slot->kept->journal();
  for (const Record& record : changes) {
    if (Status replayed = target.Replay(record); !replayed.ok()) return replayed;
    journal.Append(record);
  }
  return slot->kept->Sync();
}

std::vector<HeldShard> HostedShards::List() const {
  std::vector<HeldShard> held;
  for (int shard = 0; shard < shard_count_; ++shard) {
    std::shared_ptr<Slot> slot = Get(shard);
    if (!slot) continue;
    std::shared_lock lock(slot->gate);
    if (slot->state != HoldState::kAbsent) held.push_back({shard, slot->state, slot->epoch});
  }
  return held;
}

std::vector<HeldShardStats> HostedShards::Stats() const {
  std::vector<HeldShardStats> stats;
  for (int shard = 0; shard < shard_count_; ++shard) {
    std::shared_ptr<Slot> slot = Get(shard);
    if (!slot) continue;
    std::shared_lock lock(slot->gate);
    if (slot->state == HoldState::kAbsent) continue;
    const Shard& held = slot->kept->shard();
    stats.push_back({shard, slot->state, held.size(), held.key_count(), held.increments_applied(),
                     held.key_replays()});
  }
  return stats;
}

std::vector<HeldShard> HostedShards::StaleSeals(std::chrono::steady_clock::duration after) const {
  std::vector<HeldShard> stale;
  const auto now = std::chrono::steady_clock::now();
  for (int shard = 0; shard < shard_count_; ++shard) {
    std::shared_ptr<Slot> slot = Get(shard);
    if (!slot) continue;
    std::shared_lock lock(slot->gate);
    if (slot->state == HoldState::kSealed && now - slot->sealed_at > after) {
      stale.push_back({shard, slot->state, slot->epoch});
    }
  }
  return stale;
}

void HostedShards::TendAll(std::chrono::steady_clock::time_point expiry_deadline) {
  const int first = next_tended_.load();
  next_tended_.store((first + 1) % shard_count_);
  for (int i = 0; i < shard_count_; ++i) {
    std::shared_ptr<Slot> slot = Get((first + i) % shard_count_);
    if (!slot) continue;
    std::shared_lock lock(slot->gate);
    if (slot->state != HoldState::kAbsent) slot->kept->Tend(expiry_deadline);
  }
}

Result<CountReply> HostedShards::Count(int shard, int64_t epoch, const CounterRef& counter) {
  return Serve<CountReply>(shard, epoch, [&counter](Shard& held) { return held.Count(counter); });
}

Status HostedShards::IncrementThen(int shard, int64_t epoch, const IncrementRequest& request,
                                   Shard::IncrementDone done) {
  return WithActive<bool>(shard, epoch, [&](Slot& slot) {
    // The answer may come after the gate is released, and after a release
    // of the shard: the slot keeps it (and its journal) alive until then.
    slot.kept->shard().IncrementThen(
        request, [keep = slot.shared_from_this(), done = std::move(done)](
                     Result<IncrementReply> reply) { done(std::move(reply)); });
    return true;
  }).status();
}

void HostedShards::EnableReplication(ReplicaLogOptions options) { replication_ = options; }

void HostedShards::StartLog(int shard, Slot& slot, const ShardPlacement* placement) {
  std::shared_ptr<ReplicaLog> log;
  if (placement != nullptr && replication_) {
    log = std::make_shared<ReplicaLog>(shard, placement->epoch, *replication_);
    log->SetFollowers(placement->followers, placement->in_sync, placement->revision);
  }
  std::shared_ptr<ReplicaLog> old;
  {
    std::lock_guard lock(slot.log_mutex);
    old = std::exchange(slot.log, log);
  }
  if (old) old->Fence(fmt::format("node {} no longer serves it at epoch {}", me(), old->epoch()));
  slot.kept->journal().Replicate(log);
}

Result<HostedShards::FollowerStart> HostedShards::StartFollower(int shard, int64_t epoch,
                                                                const std::string& follower) {
  return WithActive<FollowerStart>(shard, epoch, [&](Slot& slot) -> Result<FollowerStart> {
    if (!slot.log) return InvalidArgument(fmt::format("shard {} is not replicated", shard));
    FollowerStart start{.snapshot = {}, .log_id = slot.log->id(), .next = 0};
    Result<std::vector<Record>> snapshot = slot.kept->shard().Checkpoint([&] {
      start.next = slot.log->StartFollower(follower);
      return Status();
    });
    if (!snapshot.ok()) return snapshot.status();
    start.snapshot = std::move(*snapshot);
    return start;
  });
}

void HostedShards::Fetch(int shard, int64_t epoch, const std::string& follower, uint64_t log_id,
                         uint64_t from, std::chrono::milliseconds wait,
                         ReplicaLog::FetchDone done) {
  std::shared_ptr<ReplicaLog> log;
  Status refused = WithActive<bool>(shard, epoch, [&](Slot& slot) -> Result<bool> {
    if (!slot.log) return InvalidArgument(fmt::format("shard {} is not replicated", shard));
    log = slot.log;
    return true;
  }).status();
  if (!refused.ok()) {
    done(refused);
    return;
  }
  log->Fetch(follower, log_id, from, wait, std::move(done));
}

std::vector<HostedShards::PrimaryLog> HostedShards::PrimaryLogs() const {
  std::vector<PrimaryLog> logs;
  for (int shard = 0; shard < shard_count_; ++shard) {
    std::shared_ptr<Slot> slot = Get(shard);
    if (!slot) continue;
    if (std::shared_ptr<ReplicaLog> log = slot->Log()) logs.push_back({shard, std::move(log)});
  }
  return logs;
}

void HostedShards::FenceAll(const std::string& why) {
  for (int shard = 0; shard < shard_count_; ++shard) {
    std::shared_ptr<Slot> slot = Get(shard);
    if (!slot) continue;
    if (std::shared_ptr<ReplicaLog> log = slot->Log()) log->Fence(why);
  }
}

std::optional<HostedShards::FollowerPosition> HostedShards::Position(int shard) const {
  if (!CheckShard(shard).ok()) return std::nullopt;
  std::shared_ptr<Slot> slot = Get(shard);
  if (!slot) return std::nullopt;
  std::shared_lock lock(slot->gate);
  if (slot->state != HoldState::kFollowing) return std::nullopt;
  return FollowerPosition{slot->epoch, slot->follow_log, slot->follow_next};
}

Status HostedShards::BeginFollowing(int shard, int64_t epoch, const FollowerStart& start) {
  if (Status valid = CheckShard(shard); !valid.ok()) return valid;
  if (std::shared_ptr<Slot> old = Get(shard)) {
    std::unique_lock lock(old->gate);
    if (old->state != HoldState::kStaged && old->state != HoldState::kFollowing &&
        old->state != HoldState::kAbsent) {
      return InvalidArgument(fmt::format("node {} holds shard {} {} at epoch {}", me(), shard,
                                         HoldStateName(old->state), old->epoch));
    }
    old->state = HoldState::kAbsent;
    old->kept.reset();  // closes its files; Create replaces them
    Put(shard, nullptr);
  }
  Result<std::unique_ptr<KeptShard>> created = storage_.Create(shard, epoch);
  if (!created.ok()) return created.status();
  Shard& target = (*created)->shard();
  TapJournal& journal = (*created)->journal();
  for (const Record& record : start.snapshot) {
    if (Status replayed = target.Replay(record); !replayed.ok()) return replayed;
    journal.Append(record);
  }
  if (Status synced = (*created)->Sync(); !synced.ok()) return synced;
  if (Status marked = (*created)->MarkFollowing(epoch); !marked.ok()) return marked;
  auto slot = std::make_shared<Slot>();
  slot->kept = std::move(*created);
  slot->state = HoldState::kFollowing;
  slot->epoch = epoch;
  slot->follow_log = start.log_id;
  slot->follow_next = start.next;
  Put(shard, std::move(slot));
  return {};
}

void HostedShards::ForgetPosition(int shard) {
  if (!CheckShard(shard).ok()) return;
  std::shared_ptr<Slot> slot = Get(shard);
  if (!slot) return;
  std::unique_lock lock(slot->gate);
  if (slot->state == HoldState::kFollowing) slot->follow_log = 0;
}

Status HostedShards::ApplyReplicated(int shard, int64_t epoch, uint64_t log_id,
                                     const ReplicaBatch& batch) {
  if (Status valid = CheckShard(shard); !valid.ok()) return valid;
  std::shared_ptr<Slot> slot = Get(shard);
  if (!slot) return Moved(shard, epoch, nullptr);
  std::shared_lock lock(slot->gate);  // one follower thread per shard applies
  if (slot->state != HoldState::kFollowing || slot->epoch != epoch || slot->follow_log != log_id) {
    return Moved(shard, epoch, slot.get());
  }
  if (batch.first != slot->follow_next) {
    return OutOfRange(fmt::format("shard {}: a batch from change {}, but the copy is at {}", shard,
                                  batch.first, slot->follow_next));
  }
  Shard& target = slot->kept->shard();
  TapJournal& journal = slot->kept->journal();
  std::vector<std::shared_ptr<Journal::Ticket>> tickets;
  tickets.reserve(batch.records.size());
  for (const Record& record : batch.records) {
    if (Status replayed = target.Replay(record); !replayed.ok()) return replayed;
    tickets.push_back(journal.Append(record));
  }
  for (const auto& ticket : tickets) {
    if (Status written = journal.Wait(ticket); !written.ok()) return written;
  }
  slot->follow_next += batch.records.size();
  return {};
}

}  // namespace shardctl::core
