#include "core/combining_shard_client.h"

#include <algorithm>
#include <cstdint>
#include <exception>

#include <fmt/format.h>

#include "core/int128.h"

namespace shardctl::core {
namespace {

// Values of one sign queue apart: applied together, their counts in queue
// order then all lie between the counts before and after the batch, so each
// fits wherever the final count fits.
std::string QueueKey(const IncrementRequest& request) {
  return fmt::format("{}@{}{}", request.counter.name, request.counter.window,
                     request.value < 0 ? "-" : "+");
}

}  // namespace

Result<IncrementReply> CombiningShardClient::Increment(const IncrementRequest& request) {
  if (!request.idempotency_key.empty()) return shard_->Increment(request);
  Waiter me{request.value};
  std::unique_lock lock(mutex_);
  auto it = queues_.try_emplace(QueueKey(request)).first;
  Queue& queue = it->second;
  ++queue.users;
  // Forgets the counter's queue once nobody uses it, so that many counters
  // cost nothing.
  struct Leave {
    CombiningShardClient* self;
    decltype(it) queue;
    ~Leave() {
      if (--queue->second.users == 0) self->queues_.erase(queue);
    }
  } leave{this, it};
  queue.waiting.push_back(&me);
  bool counted_as_queued = false;
  while (!me.done) {
    // Whoever finds room takes everything queued, itself included (it is
    // still queued: nobody else took it).
    if (queue.in_flight < kMaxInFlight && !queue.waiting.empty() &&
        std::find(queue.waiting.begin(), queue.waiting.end(), &me) != queue.waiting.end()) {
      std::vector<Waiter*> batch;
      batch.swap(queue.waiting);
      ++queue.in_flight;
      if (batch.size() > 1) ++combined_requests_;
      lock.unlock();
      Send(request.counter, batch);
      lock.lock();
      --queue.in_flight;
      answered_.notify_all();
    } else {
      if (!counted_as_queued) ++queued_;
      counted_as_queued = true;
      answered_.wait(lock);
    }
  }
  return me.reply;
}

void CombiningShardClient::Send(const CounterRef& counter, const std::vector<Waiter*>& batch) {
  try {
    SendOrThrow(counter, batch);
  } catch (const std::exception& e) {
    // Whoever travelled with it must hear, or it would wait for ever.
    for (Waiter* waiter : batch) {
      waiter->reply = Status(Code::kTimeout, fmt::format("{}: the increment failed before its "
                                                         "answer ({}); it may or may not have "
                                                         "been applied",
                                                         shard_->Describe(), e.what()));
    }
  }
  std::lock_guard lock(mutex_);
  for (Waiter* waiter : batch) waiter->done = true;
}

void CombiningShardClient::SendOrThrow(const CounterRef& counter,
                                       const std::vector<Waiter*>& batch) {
  Int128 sum = 0;
  for (const Waiter* waiter : batch) sum += waiter->value;
  Result<IncrementReply> reply = OutOfRange("");
  bool fits = sum >= INT64_MIN && sum <= INT64_MAX;
  if (fits) reply = shard_->Increment({static_cast<int64_t>(sum), counter});
  if (batch.size() > 1 && (!fits || reply.status().code() == Code::kOutOfRange)) {
    // One of them may fit where all together do not: each goes alone, so
    // each gets its own answer.
    for (Waiter* waiter : batch) waiter->reply = shard_->Increment({waiter->value, counter});
  } else if (!reply.ok()) {
    for (Waiter* waiter : batch) waiter->reply = reply.status();
  } else {
    // The shard applied the sum as one change: in queue order, each value's
    // count is the final count less the values queued after it.
    Int128 after = 0;
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
      IncrementReply own = *reply;
      own.count = static_cast<int64_t>(static_cast<Int128>(reply->count) - after);
      (*it)->reply = own;
      after += (*it)->value;
    }
  }
}

uint64_t CombiningShardClient::queued() const {
  std::lock_guard lock(mutex_);
  return queued_;
}

uint64_t CombiningShardClient::combined_requests() const {
  std::lock_guard lock(mutex_);
  return combined_requests_;
}

}  // namespace shardctl::core
