// DurableBatch: lets one thread serve many requests and wait for all their
// journal writes at once, the way an event loop answers everything it read in
// one pass after one write (and one fsync). While a DurableBatch is active on
// a thread, a Shard on that thread queues its journal record, applies the
// change and returns at once, leaving the wait (and, if the write fails, the
// undo) to Finish(). Whoever answers the requests must call Finish() before
// any answer leaves, and answer with the error Finish() returns for a request
// instead of its own. Not thread-safe: one thread uses one DurableBatch.
#ifndef SHARDCTL_CORE_DURABLE_BATCH_H_
#define SHARDCTL_CORE_DURABLE_BATCH_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "core/journal.h"
#include "core/status.h"

namespace shardctl::core {

class DurableBatch {
 public:
  // Called when a deferred write failed with `written`; undoes the change
  // and returns the error its request must be answered with.
  using Undo = std::function<Status(const Status& written)>;

  // Becomes this thread's active batch. REQUIRES: no other is active on it.
  DurableBatch();
  // Stops being the active batch. REQUIRES: Finish() was called after the
  // last Defer().
  ~DurableBatch();
  DurableBatch(const DurableBatch&) = delete;
  DurableBatch& operator=(const DurableBatch&) = delete;

  // This thread's active batch, or null when there is none (the shard then
  // waits for its write itself).
  static DurableBatch* Active();

  // True if some write waits for Finish().
  bool has_deferred() const { return !deferred_.empty(); }
  // How many deferred writes will wait for an fsync (their journal syncs
  // each write).
  size_t awaiting_sync() const;

  // While one lives, this thread has no active batch: what must know each
  // write's outcome before it goes on (a change spread over several shards,
  // whose answer says which of them took their part) waits for it itself.
  class Suspend {
   public:
    Suspend();
    ~Suspend();
    Suspend(const Suspend&) = delete;
    Suspend& operator=(const Suspend&) = delete;

   private:
    DurableBatch* suspended_;
  };

  // Which request the changes deferred from now on belong to.
  void BeginRequest(size_t request) { request_ = request; }

  // Leaves the wait for `ticket` (from journal->Append) to Finish().
  void Defer(Journal* journal, std::shared_ptr<Journal::Ticket> ticket, Undo undo);

  // Waits for every deferred write. For each that failed, runs its undo and
  // returns the request with the error to answer it with (a request appears
  // at most once). Empties the batch for reuse.
  std::vector<std::pair<size_t, Status>> Finish();

 private:
  struct Deferred {
    size_t request;
    Journal* journal;
    std::shared_ptr<Journal::Ticket> ticket;
    Undo undo;
  };
  std::vector<Deferred> deferred_;
  size_t request_ = 0;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_DURABLE_BATCH_H_
