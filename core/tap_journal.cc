#include "core/tap_journal.h"

namespace shardctl::core {
namespace {

// A record's ticket on a replicated primary: its write here, and its number
// in the shard's ReplicaLog.
class ReplicatedTicket : public Journal::Ticket {
 public:
  ReplicatedTicket(std::shared_ptr<Journal::Ticket> inner, std::shared_ptr<ReplicaLog> log,
                   uint64_t seq)
      : inner(std::move(inner)), log(std::move(log)), seq(seq) {}
  std::shared_ptr<Journal::Ticket> inner;
  std::shared_ptr<ReplicaLog> log;
  uint64_t seq;
};

}  // namespace

std::shared_ptr<Journal::Ticket> TapJournal::Append(const Record& record) {
  std::shared_ptr<Ticket> ticket = inner_ ? inner_->Append(record) : std::make_shared<Ticket>();
  std::lock_guard lock(mutex_);
  if (log_) ticket = std::make_shared<ReplicatedTicket>(ticket, log_, log_->Append(record));
  if (tapping_) tapped_.emplace_back(record, ticket);
  return ticket;
}

Status TapJournal::Wait(const std::shared_ptr<Ticket>& ticket) {
  if (auto* replicated = dynamic_cast<ReplicatedTicket*>(ticket.get())) {
    if (inner_) {
      if (Status written = inner_->Wait(replicated->inner); !written.ok()) return written;
    }
    return replicated->log->WaitReplicated(replicated->seq);
  }
  return inner_ ? inner_->Wait(ticket) : Status();
}

void TapJournal::WaitThen(const std::shared_ptr<Ticket>& ticket,
                          std::function<void(Status)> done) {
  auto* replicated = dynamic_cast<ReplicatedTicket*>(ticket.get());
  if (replicated == nullptr) {
    done(Wait(ticket));
    return;
  }
  // The write here is waited for once the followers have the record, on the
  // thread that took their fetch: one wait there covers every record that
  // fetch acknowledged (a group commit), where a wait per increment on its
  // own thread would cost one fsync each under --fsync always.
  replicated->log->WhenReplicated(
      replicated->seq,
      [inner = inner_, ticket = replicated->inner, done = std::move(done)](Status replicated) {
        if (!replicated.ok() || inner == nullptr) return done(replicated);
        done(inner->Wait(ticket));
      });
}

void TapJournal::Replicate(std::shared_ptr<ReplicaLog> log) {
  std::lock_guard lock(mutex_);
  log_ = std::move(log);
}

std::shared_ptr<ReplicaLog> TapJournal::replica_log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

void TapJournal::OpenTap() {
  std::lock_guard lock(mutex_);
  tapping_ = true;
  tapped_.clear();
}

std::vector<Record> TapJournal::CloseTap() {
  std::vector<std::pair<Record, std::shared_ptr<Ticket>>> tapped;
  {
    std::lock_guard lock(mutex_);
    tapping_ = false;
    tapped.swap(tapped_);
  }
  std::vector<Record> records;
  records.reserve(tapped.size());
  for (auto& [record, ticket] : tapped) {
    if (Wait(ticket).ok()) records.push_back(std::move(record));
  }
  return records;
}

}  // namespace shardctl::core
