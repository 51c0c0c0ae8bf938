// MemoryCoordStore: a CoordStore in memory, for unit tests of everything built
// on the interface: etcd's revision rules (one counter for the whole store,
// bumped by every change), leases on an injected clock, watches replayed from
// a history, and switches for what a real store does to its clients
// (unreachable, compacted). Thread-safe.
#ifndef SHARDCTL_CORE_MEMORY_COORD_STORE_H_
#define SHARDCTL_CORE_MEMORY_COORD_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/coord_store.h"

namespace shardctl::core {

class MemoryCoordStore : public CoordStore {
 public:
  // `now_ms`: the clock leases run on, in milliseconds from any epoch (the
  // steady clock by default). Tests pass a clock they advance themselves.
  explicit MemoryCoordStore(std::function<int64_t()> now_ms = nullptr);
  ~MemoryCoordStore() override;
  MemoryCoordStore(const MemoryCoordStore&) = delete;
  MemoryCoordStore& operator=(const MemoryCoordStore&) = delete;

  // The CoordStore calls, as documented there, and as etcd 3.4 answers them:
  // - a lease that has expired, was revoked or never existed is
  //   kInvalidArgument for KeepAlive, RevokeLease and a CompareAndSet whose
  //   compare holds (a failed compare is reported first, as etcd's txn does);
  // - CompareAndDelete of an absent key with expected_revision 0 succeeds
  //   without a change, with the store's revision;
  // - WatchPrefix from revision 0 starts with the next change.
  Result<std::optional<KeyValue>> Get(const std::string& key) override;
  Result<KeyRange> List(const std::string& prefix) override;
  Result<CasResult> CompareAndSet(const std::string& key, int64_t expected_revision,
                                  const std::string& value, LeaseId lease = 0) override;
  Result<CasResult> CompareAndDelete(const std::string& key, int64_t expected_revision) override;
  Result<bool> CommitIfUnchanged(const std::string& prefix, int64_t revision,
                                 const std::vector<KeyWrite>& writes) override;
  Result<LeaseId> GrantLease(int64_t ttl_seconds) override;
  Status KeepAlive(LeaseId lease) override;
  Status RevokeLease(LeaseId lease) override;
  Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix,
                                             int64_t start_revision) override;

  // Leases expire when the store notices: every call above first deletes the
  // keys of each lease whose time has run out by now_ms() (all of a lease's
  // keys at one revision, as etcd does). This does only that, so a test that
  // advanced its clock can make a waiting watch see the deletions.
  void ExpireLeases();

  // While false, every call fails with kUnavailable, and every watch open at
  // the time fails (kUnavailable) at its next Next, even after the store is
  // reachable again: as when etcd goes away.
  void SetReachable(bool reachable);

  // Forgets the history before `revision`, as etcd's compaction does: a watch
  // from an earlier revision fails with kOutOfRange.
  void Compact(int64_t revision);

  // The store's revision: that of its latest change, 0 before any.
  int64_t revision() const;

 private:
  struct State;
  class MemoryWatch;
  std::shared_ptr<State> state_;  // shared with the watches, which may outlive the store
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_MEMORY_COORD_STORE_H_
