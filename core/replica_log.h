// ReplicaLog: on a shard's primary, at one epoch, every change the shard
// journals, numbered from 0 and kept until each follower has fetched it; and
// the wait of an increment until every follower in the in-sync set has it.
//
// Followers pull (as Kafka's do): a fetch names the log (its id: a primary
// that restarts at the same epoch starts a new log) and the number of the
// first change it does not have yet, which acknowledges every change
// before it as durable on that follower. A fetch with nothing new waits
// until a change comes or its time is up (a long poll).
//
// The in-sync set the waits use is always a superset of the one in the
// coordination store: a follower is required here before the store lists it
// (ExpectInSync, once it is close behind), is listed only once it has every
// change up to the point it became required (ReadyToList: every change after
// that point waited for it), and is dropped here only after the store stopped
// listing it (SetFollowers). So a change acknowledged with `ack all` is on
// every follower the store calls in sync, which is what makes promoting any
// of them safe. (Requiring a follower only once it has every change, at the
// instant a tick looks, would never happen under steady writes: a fetch
// acknowledges what came before it, so a busy follower is always a batch
// behind.)
//
// Thread-safe.
#ifndef SHARDCTL_CORE_REPLICA_LOG_H_
#define SHARDCTL_CORE_REPLICA_LOG_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/record.h"
#include "core/status.h"

namespace shardctl::core {

// When an increment on a replicated shard is acknowledged.
enum class AckPolicy {
  kAll,      // once every in-sync follower has it (and the primary's journal)
  kPrimary,  // once the primary's journal has it; followers get it soon after
};

// Parses "all" or "primary"; kInvalidArgument otherwise.
Result<AckPolicy> ParseAckPolicy(std::string_view text);

struct ReplicaLogOptions {
  AckPolicy ack = AckPolicy::kAll;
  // A follower that has not had a change for this long is out of sync.
  std::chrono::milliseconds lag_max{1000};
  // Changes kept for followers behind; one further behind starts again from
  // a snapshot.
  size_t max_kept = 4'000'000;
};

// One fetch's answer: the changes from `first` on (none when the wait ran
// out), in order.
struct ReplicaBatch {
  uint64_t first = 0;
  std::vector<Record> records;
};

// What a follower tells, or a primary reports, of one follower.
struct FollowerProgress {
  std::string node;
  uint64_t acknowledged = 0;  // changes it has (its next fetch starts there)
  uint64_t behind = 0;        // changes taken since that it has not fetched
  bool required = false;      // increments wait for it
};

class ReplicaLog {
 public:
  ReplicaLog(int shard, int64_t epoch, ReplicaLogOptions options);
  ~ReplicaLog();  // Fails what still waits, as Fence does.
  ReplicaLog(const ReplicaLog&) = delete;
  ReplicaLog& operator=(const ReplicaLog&) = delete;

  int shard() const { return shard_; }
  int64_t epoch() const { return epoch_; }
  uint64_t id() const { return id_; }
  AckPolicy ack() const { return options_.ack; }

  // Numbers and keeps a change. Cheap; answers any fetch waiting for it.
  uint64_t Append(const Record& record);

  // Blocks until change `seq` is on every required follower (at once for
  // kPrimary), or the log is fenced: then returns kTimeout (the change is
  // journaled here but its outcome is unknown: it is on no copy that may be
  // promoted, or it is: a retry with the same Idempotency-Key tells).
  Status WaitReplicated(uint64_t seq);
  // The same, calling `done` with what WaitReplicated would return, once
  // it would return (at once when it would not wait): on the thread that
  // takes the fetch which completes it, so `done` must be cheap.
  void WhenReplicated(uint64_t seq, std::function<void(Status)> done);

  // Starts (or starts again) `follower` at the next change, for a snapshot
  // taken at this moment. Call while no change can happen (inside
  // Shard::Checkpoint's rotate). Returns the number of that change.
  uint64_t StartFollower(const std::string& follower);

  using FetchDone = std::function<void(Result<ReplicaBatch>)>;
  // A follower's fetch from change `from` of log `log_id`. Calls `done` now
  // with the changes from `from` on if there are any, or once the next
  // comes, or with none once `wait` has passed (Expire). kOutOfRange when
  // the follower must start again from a snapshot (another log, a change
  // no longer kept, a follower not started); kMoved once fenced. `done`
  // must be cheap: it may run under a shard's lock.
  void Fetch(const std::string& follower, uint64_t log_id, uint64_t from,
             std::chrono::milliseconds wait, FetchDone done);
  // Answers fetches whose wait has passed, with nothing.
  void Expire();

  // The followers and the in-sync ones as the coordination store lists them
  // now. Followers listed in sync are required from now on; one not listed
  // stops being required unless ExpectInSync added it since the store was
  // read; one no longer a follower is forgotten. `revision` is the
  // placement's: one older than a placement applied before is ignored.
  void SetFollowers(const std::vector<std::string>& followers,
                    const std::vector<std::string>& in_sync, int64_t revision);
  // Makes `follower` required from now on, before it is listed in sync; it
  // is ready to be listed once it has every change made before this call.
  // Returns false (and changes nothing) for a follower this log does not
  // know, or one that must start again, or once fenced.
  bool ExpectInSync(const std::string& follower);
  // Followers required by ExpectInSync, not listed yet, that have every
  // change made before it: to be put in the in-sync set.
  std::vector<std::string> ReadyToList() const;
  // Withdraws an ExpectInSync that the store did not record.
  void AbandonExpect(const std::string& follower);

  // Required followers with a change older than lag_max they have not
  // fetched: to be taken out of the in-sync set.
  std::vector<std::string> Lagging() const;
  // Followers not required, fetching (within lag_max), at most
  // kCatchUpWindow changes behind: to be required (ExpectInSync).
  std::vector<std::string> CaughtUp() const;
  static constexpr uint64_t kCatchUpWindow = 1024;
  std::vector<FollowerProgress> Progress() const;

  // Fails every wait (kTimeout) and fetch (kMoved) from now on: the shard
  // is no longer served at this epoch here.
  void Fence(const std::string& why);

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    Record record;
    Clock::time_point at;
  };
  struct Follower {
    uint64_t acknowledged = 0;
    Clock::time_point last_fetch;
    bool listed = false;    // in sync in the store
    bool expected = false;  // required before the store lists it
    uint64_t expected_from = 0;  // with `expected`: listed once it has every change before this
    bool lost = false;      // asked from a position not in this log: starts again
  };
  struct Parked {
    std::string follower;
    uint64_t from = 0;
    Clock::time_point until;
    FetchDone done;
  };

  bool Required(const Follower& follower) const { return follower.listed || follower.expected; }
  // Every change before this is on every required follower.
  uint64_t Replicated() const;  // REQUIRES: mutex_ held
  // Takes the WhenReplicated calls now due, to call once mutex_ is released.
  using Due = std::vector<std::function<void(Status)>>;
  Due TakeDue();  // REQUIRES: mutex_ held
  Status FencedStatus() const;  // REQUIRES: mutex_ held, fenced
  void SetFollowersLocked(const std::vector<std::string>& followers,
                          const std::vector<std::string>& in_sync, int64_t revision);
  // The lowest change any required or started follower still needs.
  void Trim();  // REQUIRES: mutex_ held
  ReplicaBatch From(uint64_t from) const;  // REQUIRES: mutex_ held
  // The oldest change a follower at `acknowledged` lacks, if any.
  const Entry* Oldest(uint64_t acknowledged) const;  // REQUIRES: mutex_ held

  const int shard_;
  const int64_t epoch_;
  const uint64_t id_;
  const ReplicaLogOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable replicated_;
  std::deque<Entry> kept_;  // changes base_ ... next_ - 1
  uint64_t base_ = 0;
  uint64_t next_ = 0;
  std::map<std::string, Follower> followers_;
  std::vector<Parked> parked_;
  std::multimap<uint64_t, std::function<void(Status)>> waiting_;  // by change
  int64_t revision_ = 0;  // of the placement SetFollowers applied last
  std::string fenced_;  // why, once fenced
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_REPLICA_LOG_H_
