// HostedShards: the shards one cluster node holds, each in a state and at an
// epoch, and the fence every request passes: a request is served only by a
// shard held active at exactly the epoch the request names; anything else is
// refused with kMoved, so that a router with an old topology, or an old
// owner, can never have a write acknowledged. It also runs both ends of a
// move (copy, seal, stage, catch up) and applies the topology's word on each
// shard (Reconcile). Where shards are kept is a ShardStorage: on disk
// (store/node_storage.h) or in memory. With replication it is both ends of
// that too: a primary's shards keep a ReplicaLog their followers fetch from
// (core/replica_log.h), and a follower's copies apply what they fetched.
// Thread-safe.
#ifndef SHARDCTL_CORE_HOSTED_SHARDS_H_
#define SHARDCTL_CORE_HOSTED_SHARDS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/record.h"
#include "core/replica_log.h"
#include "core/shard.h"
#include "core/status.h"
#include "core/tap_journal.h"
#include "core/topology.h"

namespace shardctl::core {

// One shard with whatever keeps it (its store), as a ShardStorage opens it.
class KeptShard {
 public:
  virtual ~KeptShard() = default;
  virtual Shard& shard() = 0;
  // The journal in front of the shard's store: the shard journals into it.
  virtual TapJournal& journal() = 0;
  // Makes every change so far durable.
  virtual Status Sync() = 0;
  // Once a second: syncs, drops expired windows (until `expiry_deadline`,
  // one slice at least: Shard::DropExpired) and keys, compacts.
  virtual void Tend(std::chrono::steady_clock::time_point expiry_deadline) = 0;
  // The shard is complete and served from now on: it is opened as active
  // after a restart (a staged shard is not).
  virtual Status MarkActive() = 0;
  // The shard is a follower's copy of the primary's at `epoch`, complete as
  // of its snapshot: it is opened as following after a restart.
  virtual Status MarkFollowing(int64_t epoch) = 0;
  // The shard is not this node's any more: its data is set aside, never
  // served again. Called once, just before the KeptShard is destroyed.
  virtual void Retire() = 0;
};

class ShardStorage {
 public:
  virtual ~ShardStorage() = default;
  // What a node kept from before: each shard, and whether it was staged (a
  // copy that a move had not handed over yet) from which epoch.
  struct Found {
    int shard = 0;
    std::optional<int64_t> staged_from = {};
    std::optional<int64_t> following_at = {};  // a follower's copy, of that epoch
  };
  virtual Result<std::vector<Found>> Scan() = 0;
  // Opens a shard Scan() found.
  virtual Result<std::unique_ptr<KeptShard>> Open(int shard) = 0;
  // Makes a new, empty shard (removing leftovers of an earlier one), staged
  // from `staged_from` when given, otherwise active.
  virtual Result<std::unique_ptr<KeptShard>> Create(int shard,
                                                    std::optional<int64_t> staged_from) = 0;
  // False when shards are kept in memory only: a restart loses them, so an
  // owned shard without data is made anew instead of refused.
  virtual bool durable() const = 0;
};

// What a node does about one shard, given its own state and the topology's
// placement of it (pure; see DecideShard).
enum class ShardAction {
  kNothing,
  kActivate,         // serve it at the placement's epoch (data held, or staged and handed over)
  kCreate,           // owned but never held: make it empty and serve it
  kRefuseMissing,    // owned, but its data is missing here: serve nothing, say so
  kRelease,          // another node owns it now: stop serving, set the data aside
  kDropStaged,       // a staged copy whose move did not complete
  kFollow,           // a follower: (re)start its copy from the primary's snapshot
};

// The state of one shard on a node.
enum class HoldState { kAbsent, kActive, kSealed, kStaged, kFollowing };
std::string_view HoldStateName(HoldState state);

// The rule each node applies to each shard whenever it reads the topology.
// `epoch` is the epoch the node holds it at (active, sealed), or for a
// staged copy the epoch it was copied from, or for a follower's copy the
// epoch of the primary it follows.
ShardAction DecideShard(HoldState state, int64_t epoch, const ShardPlacement& placement,
                        const std::string& me, bool durable);

// One shard as a node holds it, for status.
struct HeldShard {
  int shard = 0;
  HoldState state = HoldState::kAbsent;
  int64_t epoch = 0;
  bool operator==(const HeldShard&) const = default;
};

// One held shard's figures, for metrics.
struct HeldShardStats {
  int shard = 0;
  HoldState state = HoldState::kAbsent;
  size_t counters = 0;
  size_t keys = 0;
  uint64_t applied = 0;      // Shard::increments_applied() of this copy
  uint64_t key_replays = 0;  // Shard::key_replays() of this copy
};

class HostedShards {
 public:
  // REQUIRES: `storage` outlives this; 1 <= shard_count.
  HostedShards(ShardStorage& storage, int shard_count);
  ~HostedShards();

  // Names the node `me` and loads what the storage kept: active shards are
  // held sealed at epoch 0 until Reconcile names their epoch; staged ones
  // stay staged. REQUIRES: called once, before anything but Serve (which
  // refuses everything until then).
  Status Load(std::string me);
  // The node's id, "" before Load.
  std::string me() const;

  // Applies the placement (the topology's word on one shard). Returns a line
  // for the log when something changed, "" otherwise.
  std::string Reconcile(const ShardPlacement& placement);

  // The fence: runs fn(shard) while holding shard `shard` active at `epoch`
  // (a move waits until fn returns). Returns fn's result, or kMoved saying
  // why this node does not serve it at that epoch.
  template <typename T, typename Fn>
  Result<T> Serve(int shard, int64_t epoch, const Fn& fn);

  // Move, on the node that has the shard. StartCopy returns a snapshot of
  // the shard (counters and idempotency keys) and starts keeping every
  // change after it; Seal stops serving the shard (waiting for requests in
  // flight) and returns those changes. Both REQUIRE the shard held active
  // at `epoch` (Seal: or sealed at it, which returns the same changes
  // again), else kMoved.
  Result<std::vector<Record>> StartCopy(int shard, int64_t epoch);
  Result<std::vector<Record>> Seal(int shard, int64_t epoch);

  // Move, on the node it goes to: Stage makes a new staged shard from the
  // snapshot (dropping any earlier staged copy); CatchUp applies the changes
  // Seal returned and makes them durable. Both REQUIRE `epoch` to be the
  // epoch the source holds the shard at.
  Status Stage(int shard, int64_t epoch, const std::vector<Record>& snapshot);
  Status CatchUp(int shard, int64_t epoch, const std::vector<Record>& changes);

  // Every shard held, by shard number.
  std::vector<HeldShard> List() const;
  // Every shard held, with its figures.
  std::vector<HeldShardStats> Stats() const;
  // Shards sealed for longer than `after` (a move that stalled), with their epoch.
  std::vector<HeldShard> StaleSeals(std::chrono::steady_clock::duration after) const;
  // Tend() on every shard held, sharing `expiry_deadline`: each call starts
  // from the next shard, so that no shard's expiry is always left one slice.
  void TendAll(std::chrono::steady_clock::time_point expiry_deadline);

  // Shard::IncrementThen on shard `shard` held active at `epoch`; kMoved as
  // Serve. The shard stays alive until `done` has run, even if the node
  // lets it go meanwhile.
  Status IncrementThen(int shard, int64_t epoch, const IncrementRequest& request,
                       Shard::IncrementDone done);

  // The shard's count of `counter` if held active at `epoch` (as Serve).
  Result<CountReply> Count(int shard, int64_t epoch, const CounterRef& counter);

  // Replication. Shards made primary from now on keep a ReplicaLog with
  // these options. REQUIRES: called before Load.
  void EnableReplication(ReplicaLogOptions options);

  // On the primary: a follower's start, a snapshot of the shard (held active
  // at `epoch`) with the position in its log right after it.
  struct FollowerStart {
    std::vector<Record> snapshot;
    uint64_t log_id = 0;
    uint64_t next = 0;
  };
  Result<FollowerStart> StartFollower(int shard, int64_t epoch, const std::string& follower);
  // On the primary: a follower's fetch (ReplicaLog::Fetch); kMoved when the
  // shard is not held active at `epoch`, kInvalidArgument unreplicated.
  void Fetch(int shard, int64_t epoch, const std::string& follower, uint64_t log_id,
             uint64_t from, std::chrono::milliseconds wait, ReplicaLog::FetchDone done);
  // On the primary: the log of every shard held active, for the agent to
  // tend (in-sync set, expired fetches).
  struct PrimaryLog {
    int shard = 0;
    std::shared_ptr<ReplicaLog> log;
  };
  std::vector<PrimaryLog> PrimaryLogs() const;
  // Fails every wait and fetch of every log (the node is stopping).
  void FenceAll(const std::string& why);

  // On a follower: where its copy of `shard` stands.
  struct FollowerPosition {
    int64_t epoch = 0;
    uint64_t log_id = 0;  // 0: unknown (after a restart): start again
    uint64_t next = 0;
  };
  std::optional<FollowerPosition> Position(int shard) const;
  // On a follower: makes its copy of `shard` anew from `start`, following
  // the primary at `epoch`. Refused (kInvalidArgument) if the node holds the
  // shard otherwise than following or staged.
  Status BeginFollowing(int shard, int64_t epoch, const FollowerStart& start);
  // On a follower: applies `batch` and makes it durable (by the node's
  // fsync policy). kMoved when the copy no longer follows at `epoch` in that
  // log, kOutOfRange when the batch does not start where the copy is.
  Status ApplyReplicated(int shard, int64_t epoch, uint64_t log_id, const ReplicaBatch& batch);
  // On a follower: its copy must start again from a snapshot (kept, not
  // served, until then).
  void ForgetPosition(int shard);

 private:
  // Shared: an answer that comes later (IncrementThen) keeps its slot alive.
  struct Slot : std::enable_shared_from_this<Slot> {
    std::unique_ptr<KeptShard> kept;
    HoldState state = HoldState::kAbsent;
    int64_t epoch = 0;
    // A replicated primary's log, while active. Read without the gate (a
    // request waiting for its followers holds the gate shared), written
    // under both.
    std::shared_ptr<ReplicaLog> log;
    mutable std::mutex log_mutex;
    std::shared_ptr<ReplicaLog> Log() const {
      std::lock_guard lock(log_mutex);
      return log;
    }
    uint64_t follow_log = 0;          // a follower's position in the primary's log
    std::atomic<uint64_t> follow_next{0};  // written by the one thread that applies
    std::chrono::steady_clock::time_point sealed_at;
    mutable std::shared_mutex gate;  // shared: a request; exclusive: a change of state
  };

  // Runs fn(slot) under the shard's shared gate when it is held active at
  // `epoch`; otherwise returns kMoved (or kInvalidArgument for no such shard).
  template <typename T, typename Fn>
  Result<T> WithActive(int shard, int64_t epoch, const Fn& fn);
  std::shared_ptr<Slot> Get(int shard) const;
  void Put(int shard, std::shared_ptr<Slot> slot);
  Status Moved(int shard, int64_t epoch, const Slot* slot) const;
  Status CheckShard(int shard) const;
  // Starts a log for the slot, now active at its epoch as `placement` says
  // (when replicating), or ends the one it had. REQUIRES: gate held exclusively.
  void StartLog(int shard, Slot& slot, const ShardPlacement* placement);

  ShardStorage& storage_;
  const int shard_count_;
  std::atomic<int> next_tended_{0};               // the shard TendAll starts from
  std::optional<ReplicaLogOptions> replication_;  // set before Load
  std::string me_;  // guarded by mutex_
  mutable std::mutex mutex_;  // guards slots_ (the pointers, not the slots)
  std::vector<std::shared_ptr<Slot>> slots_;
};

template <typename T, typename Fn>
Result<T> HostedShards::WithActive(int shard, int64_t epoch, const Fn& fn) {
  if (Status valid = CheckShard(shard); !valid.ok()) return valid;
  std::shared_ptr<Slot> slot = Get(shard);
  if (!slot) return Moved(shard, epoch, nullptr);
  std::shared_lock lock(slot->gate);
  if (slot->state != HoldState::kActive || slot->epoch != epoch) {
    return Moved(shard, epoch, slot.get());
  }
  return fn(*slot);
}

template <typename T, typename Fn>
Result<T> HostedShards::Serve(int shard, int64_t epoch, const Fn& fn) {
  return WithActive<T>(shard, epoch, [&fn](Slot& slot) { return fn(slot.kept->shard()); });
}

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_HOSTED_SHARDS_H_
