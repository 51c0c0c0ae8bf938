// Journal: where a shard makes its changes durable before it answers. The
// shard appends an encoded Record while it holds the lock of the counter it
// changed (so records of one counter keep their order), then waits for it
// outside that lock (so concurrent changes share one write and one fsync).
// Implementations: store::FileJournal. Implementations must be thread-safe.
#ifndef SHARDCTL_CORE_JOURNAL_H_
#define SHARDCTL_CORE_JOURNAL_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "core/record.h"
#include "core/status.h"

namespace shardctl::core {

class Journal {
 public:
  // What Append returns and Wait takes: the write the record will be part of.
  class Ticket {
   public:
    virtual ~Ticket() = default;
  };

  virtual ~Journal() = default;

  // Queues `record` for the next write. Cheap: no I/O happens here.
  virtual std::shared_ptr<Ticket> Append(const Record& record) = 0;

  // Blocks until the write holding the ticket's record is as durable as the
  // journal's policy asks. Returns OK, or the I/O failure (e.g. a full disk),
  // in which case the record is not in the journal and the shard must undo
  // it; or kTimeout, when the record is written but its replication could
  // not be confirmed (core/tap_journal.h): the change stands, its outcome
  // is unknown to the client.
  virtual Status Wait(const std::shared_ptr<Ticket>& ticket) = 0;

  // Wait, answering through `done` (which may run later, on another
  // thread) instead of blocking for what comes after the write itself.
  virtual void WaitThen(const std::shared_ptr<Ticket>& ticket,
                        std::function<void(Status)> done) {
    done(Wait(ticket));
  }

  // How many appended records have failed to be written so far, counted
  // before Wait reports their failure. A shard compares it with the changes
  // it has undone, so that it never snapshots a change whose write failed
  // but whose undo still waits for a lock (core::Shard::Checkpoint).
  virtual uint64_t failed_records() const { return 0; }

  // True if every write is synced to stable storage before Wait returns, so
  // that a Wait takes as long as an fsync: worth waiting for several such
  // journals at once.
  virtual bool syncs_each_write() const { return false; }
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_JOURNAL_H_
