// CombiningShardClient: a ShardClient in front of another (a shard across the
// network) that lets concurrent increments of the same counter travel as one:
// while the shard is busy with as many of them as may be in flight at once,
// new ones queue, and the next caller to go sends the whole queue as one
// increment of its sum. Each caller still gets its own answer: the shard's
// count right after its own value, in the order the values were queued (the
// shard applied them together, as one change, so that order is a serial
// order; values of one sign only, so that every count in between fits).
// Increments with an idempotency key go alone (the key guards one
// increment); so does a queue whose sum would overflow, value by value.
// Thread-safe.
#ifndef SHARDCTL_CORE_COMBINING_SHARD_CLIENT_H_
#define SHARDCTL_CORE_COMBINING_SHARD_CLIENT_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/shard_client.h"
#include "core/status.h"

namespace shardctl::core {

class CombiningShardClient : public ShardClient {
 public:
  // How many requests to the shard may be in flight at once for one counter
  // before increments start to queue.
  static constexpr int kMaxInFlight = 2;

  // REQUIRES: shard != nullptr.
  explicit CombiningShardClient(std::unique_ptr<ShardClient> shard) : shard_(std::move(shard)) {}

  Result<IncrementReply> Increment(const IncrementRequest& request) override;
  // Not combined: sent as the shard's client sends it without waiting. An
  // event loop keeps many in flight without a thread each, which is what
  // combining saves.
  void IncrementAsync(const IncrementRequest& request, IncrementDone done,
                      const RunBlocking& blocking) override {
    shard_->IncrementAsync(request, std::move(done), blocking);
  }
  Result<CountReply> Count(const CounterRef& counter) override { return shard_->Count(counter); }
  Result<std::vector<CounterPart>> List(const std::string& prefix) override {
    return shard_->List(prefix);
  }
  Result<std::vector<CounterPart>> ListPage(const PageQuery& query) override {
    return shard_->ListPage(query);
  }
  Result<std::vector<CounterPart>> Rank(const RankQuery& query) override {
    return shard_->Rank(query);
  }
  Result<std::vector<int64_t>> Counts(const std::vector<std::string>& names) override {
    return shard_->Counts(names);
  }
  Result<int64_t> Reset(const std::string& name) override { return shard_->Reset(name); }
  Result<ManyReply> IncrementMany(const ManyRequest& request) override {
    return shard_->IncrementMany(request);
  }
  std::string Describe() const override { return shard_->Describe(); }
  std::string Address() const override { return shard_->Address(); }
  bool InProcess() const override { return shard_->InProcess(); }

  // How many requests carried more than one increment so far, and how many
  // increments have ever waited in a queue (for tests).
  uint64_t combined_requests() const;
  uint64_t queued() const;

 private:
  struct Waiter {
    int64_t value;
    bool done = false;
    Result<IncrementReply> reply = IncrementReply{};
  };
  struct Queue {
    std::vector<Waiter*> waiting;
    int in_flight = 0;
    int users = 0;  // callers in Increment for this queue
  };

  // Sends `batch` (all of one counter) and answers each waiter in it, even
  // if the shard client throws.
  void Send(const CounterRef& counter, const std::vector<Waiter*>& batch);
  void SendOrThrow(const CounterRef& counter, const std::vector<Waiter*>& batch);

  std::unique_ptr<ShardClient> shard_;
  mutable std::mutex mutex_;
  std::condition_variable answered_;
  // By counter and sign. A std::map: a caller keeps an iterator to its
  // queue while others add theirs, which would rehash an unordered_map.
  std::map<std::string, Queue> queues_;
  uint64_t combined_requests_ = 0;
  uint64_t queued_ = 0;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_COMBINING_SHARD_CLIENT_H_
