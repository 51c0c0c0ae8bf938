// TapJournal: a Journal in front of another (or of none, for shards kept in
// memory) that can also keep a copy of every record appended while a tap is
// open: the changes a shard takes while it is being copied to another node,
// sent after its snapshot when the move hands it over; and, on a replicated
// shard's primary, passes every record to the shard's ReplicaLog, so that
// Wait returns only once the record is on the followers the log's ack
// policy asks for. Thread-safe.
#ifndef SHARDCTL_CORE_TAP_JOURNAL_H_
#define SHARDCTL_CORE_TAP_JOURNAL_H_

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/journal.h"
#include "core/record.h"
#include "core/replica_log.h"
#include "core/status.h"

namespace shardctl::core {

class TapJournal : public Journal {
 public:
  // `inner`, if not null, receives every record and must outlive this.
  explicit TapJournal(Journal* inner) : inner_(inner) {}

  std::shared_ptr<Ticket> Append(const Record& record) override;
  Status Wait(const std::shared_ptr<Ticket>& ticket) override;
  // Nothing is waited for here: `done` runs once the followers have the
  // record and then its write here is done.
  void WaitThen(const std::shared_ptr<Ticket>& ticket, std::function<void(Status)> done) override;
  uint64_t failed_records() const override { return inner_ ? inner_->failed_records() : 0; }
  bool syncs_each_write() const override { return inner_ && inner_->syncs_each_write(); }

  // Starts keeping a copy of every record appended from now on (dropping
  // any kept before). Call while no change can happen (inside
  // Shard::Checkpoint's rotate), so that the copies are exactly the changes
  // after that snapshot.
  void OpenTap();
  // Stops keeping copies and returns those kept, in append order, less the
  // records whose write failed (their change was undone). Waits for each
  // record's write. REQUIRES: no change can happen any more (the shard is
  // sealed), so the list is complete.
  std::vector<Record> CloseTap();

  // Sends every record appended from now on to `log` too (null: to none).
  // Call while no change can happen, as OpenTap.
  void Replicate(std::shared_ptr<ReplicaLog> log);
  std::shared_ptr<ReplicaLog> replica_log() const;

 private:
  Journal* const inner_;
  mutable std::mutex mutex_;
  std::shared_ptr<ReplicaLog> log_;
  bool tapping_ = false;
  std::vector<std::pair<Record, std::shared_ptr<Ticket>>> tapped_;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_TAP_JOURNAL_H_
