// Shard: one slice of every counter (named, plain or windowed), kept in
// memory and, when given a Journal, made durable before each answer, with the
// idempotency keys of the increments it applied (core/key_table.h); and
// LocalShardClient, which lets an aggregator in the same process use a Shard
// without any network hop. Thread-safe: one lock guards its counters
// (core/counter_table.h), held for a lookup and an index update per
// increment, and never long: ended windows are dropped a slice at a time.
#ifndef SHARDCTL_CORE_SHARD_H_
#define SHARDCTL_CORE_SHARD_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/counter_table.h"
#include "core/idempotency_key.h"
#include "core/journal.h"
#include "core/key_table.h"
#include "core/record.h"
#include "core/shard_client.h"
#include "core/status.h"
#include "core/total_table.h"

namespace shardctl::core {

class Shard {
 public:
  using NowFn = std::function<int64_t()>;  // seconds since the Unix epoch

  // REQUIRES: id >= 0, key_window_seconds > 0. `now` tells windowed counters
  // and idempotency keys the time. `journal`, if not null, receives every
  // change and must outlive the shard. Idempotency keys are remembered for
  // `key_window_seconds` after they were first seen. `totals`, if not null,
  // is told of every change to a plain counter's part (the TotalTable of the
  // process's shards) and must outlive the shard.
  explicit Shard(int id, NowFn now = nullptr, Journal* journal = nullptr,
                 int64_t key_window_seconds = kDefaultIdempotencyWindowSeconds,
                 PlainObserver* totals = nullptr);
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  int id() const { return id_; }

  // From now on tells `totals` of every change to a plain counter's part, and
  // adds the parts it holds now to it: for a shard read back from its store
  // before the process's table of totals is filled (core/total_table.h).
  // REQUIRES: the shard was made without `totals`; `totals` outlives it.
  void ReportTotalsTo(TotalTable& totals);

  // Adds request.value (any int64, negative included: shards take whatever is
  // routed to them) to the counter, into its current window if it has one.
  // Returns the reply with the new count, or kOutOfRange with the count
  // unchanged. With a journal, returns only once the change is as durable as
  // the journal's policy asks; if the journal fails (a full disk), undoes the
  // change and returns kInternal. REQUIRES: the request's name, window and
  // key are valid.
  //
  // With an idempotency key, the increment is applied at most once within
  // the key window: the key goes into the same journal record as the change,
  // and a retry with the same key returns the first reply again (even after
  // a restart) without applying anything; the key with another increment
  // returns kKeyReused, and a retry while the first is still being served
  // kInProgress. A refused increment (kOutOfRange, kInternal) keeps no key.
  Result<IncrementReply> Increment(const IncrementRequest& request);
  // The same, answering through `done` once the journal's wait ends, which
  // on a replicated primary is when its followers fetched the change: no
  // thread waits meanwhile. `done` may run on another thread (the one that
  // took the followers' fetch), and must outlive nothing but itself.
  using IncrementDone = std::function<void(Result<IncrementReply>)>;
  void IncrementThen(const IncrementRequest& request, IncrementDone done);

  // Adds each item's value to its counter (in request.window, current window
  // if windowed), all of them as one change: one journal record (a kGroup)
  // holding every item and the key. Returns how many were applied, or
  // nothing applied and kOutOfRange if some counter's count would overflow
  // (naming it), or kInternal if the journal fails (every item undone).
  // With an idempotency key, a retry of the same share gets the first answer
  // and applies nothing; the key with anything else is kKeyReused, as for
  // Increment (the key remembers a fingerprint of the share).
  // REQUIRES: 1 <= items <= ManyRequest::kMaxItems, names, window and key valid.
  Result<ManyReply> IncrementMany(const ManyRequest& request);

  // This shard's part of `counter`: 0 for a counter it never saw, and for a
  // windowed counter, the count of the current window.
  CountReply Count(const CounterRef& counter) const;

  // This shard's part of every plain counter whose name starts with `prefix`,
  // in name order; read a page at a time (not one snapshot), so that a long
  // list never holds up increments.
  std::vector<CounterPart> List(std::string_view prefix) const;
  // A page of its plain counters by name (PageQuery), in name order; costs
  // the page, not the shard.
  std::vector<CounterPart> ListPage(const PageQuery& query) const;
  // A page of its plain counters by count, highest first (RankQuery).
  std::vector<CounterPart> Rank(const RankQuery& query) const;
  // Its part of each plain counter named (0 for one it does not hold), in
  // the order of `names`.
  std::vector<int64_t> Counts(const std::vector<std::string>& names) const;

  // Removes the counter `name`: its plain count and all its windows. Returns
  // the plain count removed (0 if there was none), or, if the journal fails,
  // kInternal with the counter restored.
  Result<int64_t> Reset(std::string_view name);

  // Applies a record read back from a journal or snapshot (no journal write),
  // remembering its idempotency key unless the key window has passed.
  // Returns kInternal if it would overflow a count: the store is corrupt.
  Status Replay(const Record& record);

  // Calls `rotate` while no change can happen, then returns every counter as
  // a kSet record and every idempotency key within its window as a kKey
  // record: a snapshot consistent with the point `rotate` marks (for
  // compaction: switch to a new journal, then write these as the snapshot).
  // If `rotate` fails, returns its Status. If a change whose journal write
  // failed is not undone yet (its undo waits for a lock held here), returns
  // kUnavailable and nothing: a snapshot now would keep that change.
  Result<std::vector<Record>> Checkpoint(const std::function<Status()>& rotate);

  // Forgets windows that have ended, kExpirySlice at a time under the lock
  // (increments and reads go on between slices). Returns how many were
  // dropped. All of them, one slice after another: for start-up, where
  // nothing waits.
  size_t DropExpiredWindows();
  // The same for the maintenance thread, at a pace that leaves the shard to
  // its requests: after each slice it rests kExpiryRestPerWork times as long
  // as the slice took (at least kExpiryMinRest), so it takes a fifth of one
  // core at most and the lock is free four fifths of the time; and it
  // returns once `deadline` has passed (after one slice at least), leaving
  // the rest to the next call. A million windows that end together are gone
  // in a few seconds instead of in one burst that starves the event loops of
  // the CPU and the lock.
  size_t DropExpiredWindowsPaced(std::chrono::steady_clock::time_point deadline);
  // A maintenance tick's expiry: DropExpiredWindowsPaced until `deadline`,
  // then DropExpiredKeys.
  void DropExpired(std::chrono::steady_clock::time_point deadline);
  // What one maintenance tick spends on expiry, shared by every shard it
  // tends (each gets one slice at least): however many shards a process
  // holds, their syncs and a shutdown wait for the tick this long at most.
  // At this pace 1,000,000 windows that end together are gone about 5 s
  // after they end (a third of it: 13 s).
  static constexpr std::chrono::milliseconds kExpiryBudget{300};
  static constexpr size_t kExpirySlice = 1024;
  static constexpr int kExpiryRestPerWork = 4;
  static constexpr std::chrono::microseconds kExpiryMinRest{200};
  // The most windows one hold of the lock looked at while dropping ended
  // windows, since the shard was made (at most kExpirySlice).
  size_t largest_expiry_slice() const {
    return largest_expiry_slice_.load(std::memory_order_relaxed);
  }
  // Forgets idempotency keys first seen a key window ago or longer. Returns
  // how many were dropped.
  size_t DropExpiredKeys();

  // How many counters (plain, and windows) this shard holds.
  size_t size() const;
  // How many idempotency keys it remembers.
  size_t key_count() const { return keys_.size(); }
  // Increments applied since it was made (a batch's share is one), not
  // counting those replayed from its journal or a primary.
  uint64_t increments_applied() const { return applied_.load(std::memory_order_relaxed); }
  // Retries with an idempotency key answered from the key, not applied again.
  uint64_t key_replays() const { return key_replays_.load(std::memory_order_relaxed); }

 private:
  // An increment applied and appended to the journal, its wait to come.
  struct Pending {
    IncrementReply reply;
    std::shared_ptr<Journal::Ticket> ticket;
    CounterRef counter;
    int64_t window_start = 0;
    int64_t value = 0;
    bool created = false;
    bool keyed = false;
    std::string idempotency_key;
  };
  // Applies an increment: its reply at once (a retry's first answer, a
  // refusal), or what waits for the journal.
  std::variant<Result<IncrementReply>, Pending> Apply(const IncrementRequest& request);
  // Ends an applied increment once its journal wait ended with `written`.
  Result<IncrementReply> Complete(const Pending& pending, const Status& written);

  // Undoes an increment of `amount` whose journal write failed; forgets the
  // cell if the increment `created` it and nothing else has counted since.
  void Undo(const CounterRef& counter, int64_t window_start, int64_t amount, bool created);
  // Drops up to kExpirySlice windows ended by `now` under one hold of the
  // lock.
  CounterTable::Expired DropExpiredSlice(int64_t now);
  // Undo with mutex_ held.
  void UndoLocked(const CounterRef& counter, int64_t window_start, int64_t amount, bool created);
  // Undoes the first `count` items of `request` (applied at `window_start`,
  // created[i] telling whether item i created its cell), last first. REQUIRES: mutex_ held.
  void UndoManyLocked(const ManyRequest& request, size_t count, int64_t window_start,
                      const std::vector<bool>& created);
  // Adds `amount` to (name, window) at `window_start` as a replayed record
  // does; kRemove-like when `remove`. REQUIRES: mutex_ held.
  Status ReplayAddLocked(const std::string& name, int64_t window, int64_t window_start,
                         int64_t amount, bool remove);

  const int id_;
  const NowFn now_;
  Journal* const journal_;
  mutable std::mutex mutex_;
  CounterTable table_;  // guarded by mutex_
  // Changes undone after their journal write failed, each counted once it is
  // fully undone (key forgotten included); compared with the journal's
  // failed_records() by Checkpoint.
  std::atomic<uint64_t> undone_records_{0};
  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> key_replays_{0};
  std::atomic<size_t> largest_expiry_slice_{0};
  KeyTable keys_;
};

class LocalShardClient : public ShardClient {
 public:
  // REQUIRES: `shard` outlives this client.
  explicit LocalShardClient(Shard& shard) : shard_(shard) {}

  Result<IncrementReply> Increment(const IncrementRequest& request) override {
    return shard_.Increment(request);
  }
  Result<CountReply> Count(const CounterRef& counter) override { return shard_.Count(counter); }
  Result<std::vector<CounterPart>> List(const std::string& prefix) override {
    return shard_.List(prefix);
  }
  Result<std::vector<CounterPart>> ListPage(const PageQuery& query) override {
    return shard_.ListPage(query);
  }
  Result<std::vector<CounterPart>> Rank(const RankQuery& query) override {
    return shard_.Rank(query);
  }
  Result<std::vector<int64_t>> Counts(const std::vector<std::string>& names) override {
    return shard_.Counts(names);
  }
  Result<int64_t> Reset(const std::string& name) override { return shard_.Reset(name); }
  Result<ManyReply> IncrementMany(const ManyRequest& request) override {
    return shard_.IncrementMany(request);
  }
  std::string Describe() const override;
  std::string Address() const override { return "in process"; }
  bool InProcess() const override { return true; }

 private:
  Shard& shard_;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_SHARD_H_
