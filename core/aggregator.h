// Aggregator: routes each increment to its shard and combines every shard's
// part for totals, listings and resets. It sees shards only through
// ShardClient, so tests can give it fakes. Thread-safe when its ShardClients are.
#ifndef SHARDCTL_CORE_AGGREGATOR_H_
#define SHARDCTL_CORE_AGGREGATOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/coalescer.h"
#include "core/router.h"
#include "core/shard_client.h"
#include "core/status.h"
#include "core/worker_pool.h"

namespace shardctl::core {

class TotalTable;

// Many increments of one counter in one request: POST /increment
// {"values":[...]}.
struct BatchRequest {
  static constexpr size_t kMaxValues = 100000;
  std::vector<int64_t> values;  // 1 to kMaxValues of them
  CounterRef counter;
  std::string idempotency_key;  // "" when the request carries none
};

// One shard's share of a batch: how many values went to it and its count of
// the counter after them.
struct BatchPart {
  int shard_id = 0;
  int64_t applied = 0;
  int64_t count = 0;
  bool operator==(const BatchPart&) const = default;
};

struct BatchReply {
  int64_t applied = 0;           // values counted
  std::vector<BatchPart> parts;  // the shards that took some, in shard order
  int64_t window_end = 0;        // for windowed counters: when the current window ends
};

// The answer to a batch of many counters (ManyRequest): how many
// increments were counted, and each shard's share, in shard order.
struct ManyBatchReply {
  int64_t applied = 0;
  std::vector<ManyReply> parts;  // the shards that took some
  int64_t window_end = 0;        // for windowed counters: when the current window ends
};

// A shard whose part is missing from a partial total.
struct MissingPart {
  int shard_id = 0;
  std::string error;
  bool operator==(const MissingPart&) const = default;
};

// A counter's total over every shard.
struct TotalReply {
  int64_t total = 0;
  std::vector<int64_t> parts;        // parts[i]: shard i's part (0 when missing)
  int64_t window_end = 0;            // for windowed counters: when the current window ends
  bool partial = false;              // asked for a partial total
  std::vector<MissingPart> missing;  // with partial: the shards left out, in order
};

// One shard as the aggregator sees it, for GET /shards.
struct ShardState {
  int id = 0;
  std::string address;  // the shard's URL, or "in process"
  bool up = true;
  int64_t since = 0;             // when it last went up or down (Unix seconds)
  std::string last_error;        // the last failure that marked it down; "" if none
  std::optional<int64_t> count;  // its part of the default counter, when it answered
  // Calls to it since the start, by outcome: it answered (whatever it
  // answered); not reached (refused, or not asked while down); no answer in time.
  uint64_t calls_ok = 0;
  uint64_t calls_refused = 0;
  uint64_t calls_timeout = 0;
};

struct AggregatorOptions {
  Routing routing = Routing::kValue;
  std::function<int64_t()> now;  // Unix seconds; nullptr: the system clock
  // When set, totals get every shard's part from it, in shard order, instead
  // of asking each shard (a cluster asks each node once: core/cluster_counter.h).
  std::function<std::vector<Result<CountReply>>(const CounterRef&)> count_every_shard = nullptr;
  // When set (one `serve` whose shards are all in process), leaderboards are
  // read from it rather than worked out over the shards. Must outlive the
  // aggregator.
  const TotalTable* totals = nullptr;
};

// What GET /counters asks for.
struct ListQuery {
  static constexpr int kMaxLimit = 10000;
  std::string prefix;
  int top = 0;        // > 0: the `top` highest totals, highest first (a leaderboard)
  int limit = 1000;   // otherwise: at most `limit` names after `after`, by name
  std::string after;  // "": from the first name
};

struct CounterTotal {
  std::string name;
  int64_t total = 0;
  bool operator==(const CounterTotal&) const = default;
};

struct CounterList {
  std::vector<CounterTotal> counters;
  std::string next;  // with paging: the `after` of the next page; "" on the last page
};

class Aggregator {
 public:
  // `shards[i]` is shard i. REQUIRES: !shards.empty(), no null entries.
  explicit Aggregator(std::vector<std::unique_ptr<ShardClient>> shards,
                      AggregatorOptions options = {});
  ~Aggregator();

  int shard_count() const { return static_cast<int>(shards_.size()); }
  Routing routing() const { return routing_; }

  // Health: a shard whose call fails in transport (kUnavailable, kTimeout)
  // is marked down; calls to it then fail at once with kUnavailable, without
  // waiting on it, until ProbeDownShards() finds it answering again.

  // Sends the increment to a shard chosen by the routing: by value; or, with
  // an idempotency key, by the key (never elsewhere, as a retry must reach the
  // shard that may have applied it); or in turn or at random, passing over
  // shards that are down or refuse the connection (those surely did not apply
  // it; after a timeout the outcome is unknown and is answered as it is).
  // Returns the shard's reply, or its failure as the shard client reported it.
  Result<IncrementReply> Increment(const IncrementRequest& request);

  // Increment without waiting: `done` gets what Increment would return, on
  // this thread or another. Under value routing the shard's client sends it
  // without blocking where it can (ShardClient::IncrementAsync); otherwise,
  // and wherever a call must wait, it runs on this aggregator's own threads.
  // REQUIRES: this outlives `done`.
  void IncrementAsync(const IncrementRequest& request, ShardClient::IncrementDone done);

  // Runs `task` on this aggregator's threads for calls that wait.
  void RunBlocking(std::function<void()> task);

  // Counts every value of the batch: each goes where Increment would send
  // it (by value; or, under round-robin and random, the whole batch to one
  // shard, by its key if it has one). Each shard takes its share as one
  // increment of the share's sum, so a shard applies all of its share or
  // none of it, and a retry with the same key (the same split, the same
  // sums) is answered from each shard's key table. Before anything is
  // applied, a share whose sum leaves int64 is refused (kOutOfRange). If a
  // shard fails, the Status names it and the shards that did apply theirs.
  // REQUIRES: 1 <= request.values.size() <= BatchRequest::kMaxValues.
  Result<BatchReply> IncrementBatch(const BatchRequest& request);

  // Counts every increment of a batch of many counters: each goes where a
  // single increment of it would (by value; or, under round-robin and
  // random, the whole batch to one shard, by its key if it has one), and
  // each shard applies its share as a whole (ShardClient::IncrementMany),
  // so a retry with the same key is answered from each shard's key table.
  // Before anything is applied, a share in which some counter's increments
  // add up to more than int64 holds is refused (kOutOfRange). If a shard
  // fails, the Status names it and the shards that did apply theirs.
  // REQUIRES: 1 <= request.items.size() <= ManyRequest::kMaxItems.
  Result<ManyBatchReply> IncrementMany(const ManyRequest& request);

  // The following ask every shard, in parallel when they are remote. None
  // answers from part of the shards unless asked to: if any shard fails, they
  // return a Status naming every shard that failed (with the first failure's
  // code).

  // Returns the counter's total; kInternal if it leaves int64. With
  // `partial`, shards that fail are left out and listed in the reply. When
  // the shards are remote, concurrent calls for the same total share one
  // round of asking that began after each of them (core/coalescer.h).
  Result<TotalReply> Total(const CounterRef& counter, bool partial = false);

  // Returns the plain counters the query selects, with their totals.
  // REQUIRES: 1 <= query.limit <= ListQuery::kMaxLimit, query.top >= 0.
  Result<CounterList> List(const ListQuery& query);

  // Removes the counter from every shard and returns the total removed. If a
  // shard fails, the others have still removed their parts; the Status says
  // which failed.
  Result<int64_t> Reset(const std::string& name);

  // Every shard's state, with its count of the default counter (shards that
  // are up are asked for it).
  std::vector<ShardState> Shards();
  // The same without asking the shards (no count): for metrics.
  std::vector<ShardState> ShardHealth() const;

  // Asks every shard marked down for its count, in parallel, and marks up
  // those that answer. Meant to be called a few times a second.
  void ProbeDownShards();

 private:
  class Health;

  // The blocking threads' runner, made on first use.
  const ShardClient::RunBlocking& Blocking();
  // Why shard i is not asked.
  Status Down(int i) const;
  // Calls `call(shard i)` unless shard i is down; marks it down when the call
  // fails in transport.
  template <typename T, typename Call>
  Result<T> CallShard(int i, const Call& call);
  // Under round-robin and random: the shard an increment tries first (its
  // key's shard, if it has a key).
  int FirstShard(const std::string& idempotency_key);
  // CallShard on shard `first`; with `may_pass_over`, on the next shards in
  // turn while a shard surely did not apply it (kUnavailable). `what` names
  // the increment in the error when no shard took it.
  template <typename T, typename Call>
  Result<T> CallPassingOver(int first, bool may_pass_over, const Call& call, std::string_view what);
  // `call(i)` for each shard i in `involved` (a CallShard), in parallel when
  // the shards are remote; returns the results in the order of `involved`.
  template <typename T, typename Call>
  std::vector<Result<T>> AskShards(const std::vector<int>& involved, const Call& call);
  // CallShard on every shard; returns the results in shard order.
  template <typename T, typename Call>
  std::vector<Result<T>> AskEveryShard(const Call& call);
  // List() of a page by name, and of a leaderboard (top > 0).
  Result<CounterList> Page(const ListQuery& query);
  Result<CounterList> Top(const ListQuery& query);
  // Total() without coalescing.
  Result<TotalReply> AskTotal(const CounterRef& counter, bool partial);

  std::vector<std::unique_ptr<ShardClient>> shards_;
  std::unique_ptr<Health[]> health_;
  const Routing routing_;
  const std::function<int64_t()> now_;
  const std::function<std::vector<Result<CountReply>>(const CounterRef&)> count_every_shard_;
  const TotalTable* const total_table_;
  bool all_in_process_ = true;
  std::atomic<uint64_t> next_shard_{0};  // for round-robin
  Coalescer<Result<TotalReply>> totals_;
  std::once_flag blocking_made_;
  std::unique_ptr<WorkerPool> blocking_;  // made on first use; goes first
  ShardClient::RunBlocking run_blocking_;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_AGGREGATOR_H_
