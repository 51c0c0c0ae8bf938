// CoordStore: what shardctl needs from a coordination service (etcd) to keep
// a cluster's topology, and nothing more: read keys with their revision,
// compare-and-set on that revision, leases that end when their owner stops
// refreshing them, and watches. Modelled on Vitess's topo.Conn. Everything
// above it (core/topology.h, the nodes, the aggregator, `shardctl cluster`)
// is written against this interface, never against a wire format.
// Implementations: MemoryCoordStore (core/memory_coord_store.h, for unit
// tests) and topo::EtcdStore (etcd's v3 JSON gateway). Implementations must
// be thread-safe.
//
// Safety rests on compare-and-set alone: etcd's key-value operations are
// strictly serializable, its locks are not (Jepsen, etcd 3.4.3), so every
// change of ownership compares the key's mod revision, and a lease is only
// ever used to tell whether a node is alive, never as a lock.
#ifndef SHARDCTL_CORE_COORD_STORE_H_
#define SHARDCTL_CORE_COORD_STORE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace shardctl::core {

using LeaseId = int64_t;  // 0: no lease

struct KeyValue {
  std::string key;
  std::string value;
  int64_t mod_revision = 0;  // the store revision of the key's last change
  LeaseId lease = 0;         // the lease the key is attached to, 0 for none
  bool operator==(const KeyValue&) const = default;
};

// Keys under a prefix, as of one revision of the whole store.
struct KeyRange {
  std::vector<KeyValue> kvs;  // sorted by key
  int64_t revision = 0;       // the store's revision when they were read
};

// The outcome of a compare-and-set that reached the store.
struct CasResult {
  bool succeeded = false;
  // On success: the key's new mod revision (for a delete, the store's new
  // revision). On failure: the key's current mod revision, 0 if absent.
  int64_t revision = 0;
};

// One change of a multi-key commit: a put, or a delete when `value` is unset.
struct KeyWrite {
  std::string key;
  std::optional<std::string> value;
  bool operator==(const KeyWrite&) const = default;
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete, only kv.key and kv.mod_revision are set
  bool operator==(const WatchEvent&) const = default;
};

// A stream of changes under a prefix. Not thread-safe: one reader.
class Watch {
 public:
  virtual ~Watch() = default;
  // Waits up to `wait` for changes. Returns them in revision order (empty
  // when none came in time), or a failure after which the watch is dead and
  // the caller re-reads and watches again: kUnavailable when the store went
  // away, kOutOfRange when the revision asked for was compacted.
  virtual Result<std::vector<WatchEvent>> Next(std::chrono::milliseconds wait) = 0;
};

class CoordStore {
 public:
  virtual ~CoordStore() = default;

  // The key's value and revision, std::nullopt if absent. Failures:
  // kUnavailable (the store cannot be reached, or answered in error),
  // kTimeout (no answer in time).
  virtual Result<std::optional<KeyValue>> Get(const std::string& key) = 0;

  // Every key that starts with `prefix`, with the store's revision.
  virtual Result<KeyRange> List(const std::string& prefix) = 0;

  // Sets `key` to `value` if its mod revision is `expected_revision` (0:
  // only if the key is absent), attached to `lease` (0: none). A compare that
  // fails is a CasResult, not a Status: Status failures are transport only.
  virtual Result<CasResult> CompareAndSet(const std::string& key, int64_t expected_revision,
                                          const std::string& value, LeaseId lease = 0) = 0;

  // Deletes `key` if its mod revision is `expected_revision`.
  virtual Result<CasResult> CompareAndDelete(const std::string& key,
                                             int64_t expected_revision) = 0;

  // Applies every write at one revision, all or none, if no key that starts
  // with `prefix` was created or changed after `revision` (a key deleted
  // since is not noticed). Returns true if applied, false if the compare
  // failed (nothing applied); Status failures are transport only. REQUIRES:
  // no key written twice. (A store may bound the number of writes: etcd's
  // --max-txn-ops, 128 by default; more fails with kUnavailable.)
  virtual Result<bool> CommitIfUnchanged(const std::string& prefix, int64_t revision,
                                         const std::vector<KeyWrite>& writes) = 0;

  // Grants a lease that expires `ttl_seconds` after its last refresh.
  // REQUIRES: ttl_seconds >= 1.
  virtual Result<LeaseId> GrantLease(int64_t ttl_seconds) = 0;
  // Refreshes the lease once. Returns OK, kInvalidArgument when the lease
  // has expired or never existed (its keys are gone: grant a new one), or
  // kUnavailable / kTimeout in transport.
  virtual Status KeepAlive(LeaseId lease) = 0;
  // Ends the lease now, deleting its keys.
  virtual Status RevokeLease(LeaseId lease) = 0;

  // Changes under `prefix` from `start_revision` on (inclusive; a List's
  // revision + 1 continues exactly where the List left off).
  virtual Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix,
                                                     int64_t start_revision) = 0;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_COORD_STORE_H_
