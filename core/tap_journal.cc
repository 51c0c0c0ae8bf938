#include "core/tap_journal.h"

namespace shardctl::core {

std::shared_ptr<Journal::Ticket> TapJournal::Append(const Record& record) {
  std::shared_ptr<Ticket> ticket = inner_ ? inner_->Append(record) : std::make_shared<Ticket>();
  std::lock_guard lock(mutex_);
  if (tapping_) tapped_.emplace_back(record, ticket);
  return ticket;
}

Status TapJournal::Wait(const std::shared_ptr<Ticket>& ticket) {
  return inner_ ? inner_->Wait(ticket) : Status();
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
