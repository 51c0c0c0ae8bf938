#include "core/durable_batch.h"

#include <cassert>

namespace shardctl::core {
namespace {

thread_local DurableBatch* active = nullptr;

}  // namespace

DurableBatch::DurableBatch() {
  assert(active == nullptr);
  active = this;
}

DurableBatch::~DurableBatch() {
  assert(deferred_.empty());
  active = nullptr;
}

DurableBatch* DurableBatch::Active() { return active; }

void DurableBatch::Defer(Journal* journal, std::shared_ptr<Journal::Ticket> ticket, Undo undo) {
  deferred_.push_back({request_, journal, std::move(ticket), std::move(undo)});
}

std::vector<std::pair<size_t, Status>> DurableBatch::Finish() {
  std::vector<std::pair<size_t, Status>> failed;
  // Records were queued in this order, so the first wait usually writes them
  // all and the rest return at once.
  for (Deferred& entry : deferred_) {
    Status written = entry.journal->Wait(entry.ticket);
    if (written.ok()) continue;
    Status answer = entry.undo(written);
    if (failed.empty() || failed.back().first != entry.request) {
      failed.emplace_back(entry.request, std::move(answer));
    }
  }
  deferred_.clear();
  return failed;
}

}  // namespace shardctl::core
