#include "core/memory_coord_store.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

namespace shardctl::core {
namespace {

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status UnknownLease(LeaseId lease) {
  return InvalidArgument("lease " + std::to_string(lease) +
                         " has expired or never existed: grant a new one");
}

}  // namespace

struct MemoryCoordStore::State {
  struct Lease {
    int64_t ttl_ms = 0;
    int64_t expires_ms = 0;
    std::set<std::string> keys;
  };

  std::function<int64_t()> now_ms;
  mutable std::mutex mutex;
  std::condition_variable changed;  // a change was recorded, or the store went away
  int64_t revision = 0;
  int64_t compacted = 0;  // history before this revision is forgotten
  bool reachable = true;
  uint64_t outages = 0;  // times the store became unreachable: watches older than one fail
  std::map<std::string, KeyValue> kvs;
  std::map<LeaseId, Lease> leases;
  LeaseId next_lease = 1;
  std::vector<WatchEvent> history;  // every change, in revision order

  // Records a put of `key` at a new revision, or at the current one when
  // `same_revision` (the caller bumped it, once for several changes).
  void Put(const std::string& key, const std::string& value, LeaseId lease,
           bool same_revision = false) {
    KeyValue& kv = kvs[key];
    if (kv.lease != 0) leases[kv.lease].keys.erase(key);
    kv = KeyValue{key, value, same_revision ? revision : ++revision, lease};
    if (lease != 0) leases[lease].keys.insert(key);
    history.push_back({WatchEvent::Type::kPut, kv});
    changed.notify_all();
  }

  // Records the deletion of `key`, present, at the current revision, which
  // the caller has bumped (once for all of a lease's keys).
  void Erase(const std::string& key) {
    auto it = kvs.find(key);
    if (it->second.lease != 0) leases[it->second.lease].keys.erase(key);
    kvs.erase(it);
    history.push_back({WatchEvent::Type::kDelete, KeyValue{key, "", revision, 0}});
    changed.notify_all();
  }

  // Ends a lease, deleting its keys at one revision.
  void EndLease(LeaseId lease) {
    std::set<std::string> keys;
    keys.swap(leases[lease].keys);
    if (!keys.empty()) ++revision;
    for (const std::string& key : keys) Erase(key);
    leases.erase(lease);
  }

  void ExpireLeases() {
    int64_t now = now_ms();
    std::vector<LeaseId> expired;
    for (const auto& [id, lease] : leases) {
      if (lease.expires_ms <= now) expired.push_back(id);
    }
    for (LeaseId id : expired) EndLease(id);
  }

  // Checks reachability, then expires leases: what every call does first.
  Status Begin() {
    if (!reachable) {
      return Unavailable("the coordination store cannot be reached (it was set unreachable)");
    }
    ExpireLeases();
    return {};
  }
};

class MemoryCoordStore::MemoryWatch : public Watch {
 public:
  MemoryWatch(std::shared_ptr<State> state, std::string prefix, int64_t from)
      : state_(std::move(state)),
        prefix_(std::move(prefix)),
        from_(from),
        outages_(state_->outages) {
    const std::vector<WatchEvent>& history = state_->history;
    next_ = std::partition_point(history.begin(), history.end(),
                                 [&](const WatchEvent& e) { return e.kv.mod_revision < from; }) -
            history.begin();
  }

  Result<std::vector<WatchEvent>> Next(std::chrono::milliseconds wait) override {
    auto deadline = std::chrono::steady_clock::now() + wait;
    std::unique_lock lock(state_->mutex);
    for (;;) {
      if (state_->outages != outages_) {
        return Unavailable("the coordination store went away: the watch ended");
      }
      if (from_ < state_->compacted) {
        return OutOfRange("revision " + std::to_string(from_) + " is compacted (the store keeps " +
                          std::to_string(state_->compacted) + " on): read again and watch anew");
      }
      state_->ExpireLeases();
      std::vector<WatchEvent> events;
      for (; next_ < state_->history.size(); ++next_) {
        const WatchEvent& event = state_->history[next_];
        if (event.kv.key.starts_with(prefix_)) events.push_back(event);
      }
      from_ = state_->revision + 1;
      if (!events.empty() || std::chrono::steady_clock::now() >= deadline) return events;
      state_->changed.wait_until(lock, deadline);
    }
  }

 private:
  std::shared_ptr<State> state_;
  std::string prefix_;
  int64_t from_;  // the first revision not yet looked at
  uint64_t outages_;
  size_t next_ = 0;  // the first event of the history not yet looked at
};

MemoryCoordStore::MemoryCoordStore(std::function<int64_t()> now_ms)
    : state_(std::make_shared<State>()) {
  state_->now_ms = now_ms ? std::move(now_ms) : SteadyNowMs;
}

MemoryCoordStore::~MemoryCoordStore() = default;

Result<std::optional<KeyValue>> MemoryCoordStore::Get(const std::string& key) {
  std::lock_guard lock(state_->mutex);
  if (Status status = state_->Begin(); !status.ok()) return status;
  auto it = state_->kvs.find(key);
  if (it == state_->kvs.end()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(it->second);
}

Result<KeyRange> MemoryCoordStore::List(const std::string& prefix) {
  std::lock_guard lock(state_->mutex);
  if (Status status = state_->Begin(); !status.ok()) return status;
  KeyRange range;
  range.revision = state_->revision;
  for (auto it = state_->kvs.lower_bound(prefix);
       it != state_->kvs.end() && it->first.starts_with(prefix); ++it) {
    range.kvs.push_back(it->second);
  }
  return range;
}

Result<CasResult> MemoryCoordStore::CompareAndSet(const std::string& key, int64_t expected_revision,
                                                  const std::string& value, LeaseId lease) {
  std::lock_guard lock(state_->mutex);
  if (Status status = state_->Begin(); !status.ok()) return status;
  auto it = state_->kvs.find(key);
  int64_t current = it == state_->kvs.end() ? 0 : it->second.mod_revision;
  if (current != expected_revision) return CasResult{false, current};
  if (lease != 0 && !state_->leases.contains(lease)) return UnknownLease(lease);
  state_->Put(key, value, lease);
  return CasResult{true, state_->revision};
}

Result<CasResult> MemoryCoordStore::CompareAndDelete(const std::string& key,
                                                     int64_t expected_revision) {
  std::lock_guard lock(state_->mutex);
  if (Status status = state_->Begin(); !status.ok()) return status;
  auto it = state_->kvs.find(key);
  int64_t current = it == state_->kvs.end() ? 0 : it->second.mod_revision;
  if (current != expected_revision) return CasResult{false, current};
  if (current != 0) {
    ++state_->revision;
    state_->Erase(key);
  }
  return CasResult{true, state_->revision};
}

Result<bool> MemoryCoordStore::CommitIfUnchanged(const std::string& prefix, int64_t revision,
                                                  const std::vector<KeyWrite>& writes) {
  std::lock_guard lock(state_->mutex);
  if (Status status = state_->Begin(); !status.ok()) return status;
  for (auto it = state_->kvs.lower_bound(prefix);
       it != state_->kvs.end() && it->first.starts_with(prefix); ++it) {
    if (it->second.mod_revision > revision) return false;
  }
  ++state_->revision;  // every write at one revision, as etcd's txn
  for (const KeyWrite& write : writes) {
    if (write.value) {
      state_->Put(write.key, *write.value, 0, /*same_revision=*/true);
    } else if (state_->kvs.contains(write.key)) {
      state_->Erase(write.key);
    }
  }
  return true;
}

Result<LeaseId> MemoryCoordStore::GrantLease(int64_t ttl_seconds) {
  if (ttl_seconds < 1) return InvalidArgument("a lease needs a TTL of at least 1 second");
  std::lock_guard lock(state_->mutex);
  if (Status status = state_->Begin(); !status.ok()) return status;
  LeaseId id = state_->next_lease++;
  State::Lease& lease = state_->leases[id];
  lease.ttl_ms = ttl_seconds * 1000;
  lease.expires_ms = state_->now_ms() + lease.ttl_ms;
  return id;
}

Status MemoryCoordStore::KeepAlive(LeaseId lease) {
  std::lock_guard lock(state_->mutex);
  if (Status status = state_->Begin(); !status.ok()) return status;
  auto it = state_->leases.find(lease);
  if (it == state_->leases.end()) return UnknownLease(lease);
  it->second.expires_ms = state_->now_ms() + it->second.ttl_ms;
  return {};
}

Status MemoryCoordStore::RevokeLease(LeaseId lease) {
  std::lock_guard lock(state_->mutex);
  if (Status status = state_->Begin(); !status.ok()) return status;
  if (!state_->leases.contains(lease)) return UnknownLease(lease);
  state_->EndLease(lease);
  return {};
}

Result<std::unique_ptr<Watch>> MemoryCoordStore::WatchPrefix(const std::string& prefix,
                                                             int64_t start_revision) {
  std::lock_guard lock(state_->mutex);
  if (Status status = state_->Begin(); !status.ok()) return status;
  int64_t from = start_revision > 0 ? start_revision : state_->revision + 1;
  return std::unique_ptr<Watch>(std::make_unique<MemoryWatch>(state_, prefix, from));
}

void MemoryCoordStore::ExpireLeases() {
  std::lock_guard lock(state_->mutex);
  state_->ExpireLeases();
}

void MemoryCoordStore::SetReachable(bool reachable) {
  std::lock_guard lock(state_->mutex);
  if (state_->reachable && !reachable) ++state_->outages;
  state_->reachable = reachable;
  state_->changed.notify_all();
}

void MemoryCoordStore::Compact(int64_t revision) {
  std::lock_guard lock(state_->mutex);
  state_->compacted = std::max(state_->compacted, revision);
  state_->changed.notify_all();
}

int64_t MemoryCoordStore::revision() const {
  std::lock_guard lock(state_->mutex);
  return state_->revision;
}

}  // namespace shardctl::core
