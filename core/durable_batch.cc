#include "core/durable_batch.h"

#include <algorithm>
#include <cassert>
#include <future>
#include <utility>

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

DurableBatch::Suspend::Suspend() : suspended_(std::exchange(active, nullptr)) {}

DurableBatch::Suspend::~Suspend() { active = suspended_; }

size_t DurableBatch::awaiting_sync() const {
  return static_cast<size_t>(std::count_if(deferred_.begin(), deferred_.end(), [](const auto& d) {
    return d.journal->syncs_each_write();
  }));
}

void DurableBatch::Defer(Journal* journal, std::shared_ptr<Journal::Ticket> ticket, Undo undo) {
  deferred_.push_back({request_, journal, std::move(ticket), std::move(undo)});
}

std::vector<std::pair<size_t, Status>> DurableBatch::Finish() {
  // Journals that fsync each write are waited for at once (one thread each
  // but this one), so that a pass over several shards takes one fsync's
  // time, not one per shard. Waiting for a journal's last ticket waits for
  // its earlier ones: a journal writes its batches in order.
  std::vector<const Deferred*> last_of_each;
  for (auto it = deferred_.rbegin(); it != deferred_.rend(); ++it) {
    if (!it->journal->syncs_each_write()) continue;
    bool seen = std::any_of(last_of_each.begin(), last_of_each.end(),
                            [&](const Deferred* d) { return d->journal == it->journal; });
    if (!seen) last_of_each.push_back(&*it);
  }
  if (last_of_each.size() > 1) {
    std::vector<std::future<Status>> waits;
    for (size_t i = 1; i < last_of_each.size(); ++i) {
      waits.push_back(std::async(std::launch::async, [entry = last_of_each[i]] {
        return entry->journal->Wait(entry->ticket);
      }));
    }
    last_of_each[0]->journal->Wait(last_of_each[0]->ticket);
    for (auto& wait : waits) wait.get();
  }

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
