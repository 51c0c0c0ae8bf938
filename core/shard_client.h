// ShardClient: how the aggregator talks to one shard, wherever it runs, and
// the request and reply types of that conversation. Implementations:
// LocalShardClient (core/shard.h, in process) and net::HttpShardClient (over
// HTTP). Implementations must be thread-safe.
#ifndef SHARDCTL_CORE_SHARD_CLIENT_H_
#define SHARDCTL_CORE_SHARD_CLIENT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/counter_name.h"
#include "core/status.h"

namespace shardctl::core {

// Which counter a request is about.
struct CounterRef {
  std::string name = std::string(kDefaultCounter);
  int64_t window = 0;  // seconds; 0 for a plain (never expiring) counter

  bool is_default() const { return name == kDefaultCounter && window == 0; }
  bool operator==(const CounterRef&) const = default;
};

// An increment, as POST /increment carries it. Names, windows and keys are valid.
struct IncrementRequest {
  int64_t value = 1;  // a missing "value" means 1, as in the original
  CounterRef counter;
  // Its Idempotency-Key header, "" for none. The shard applies an increment
  // that carries a key at most once and answers a retry with the same key
  // with the first answer (core/key_table.h). Routing that does not go by the
  // value goes by the key (ShardForKey in core/router.h), so that a retry
  // reaches the shard that remembers it.
  std::string idempotency_key = {};
};

// A shard's answer to an increment: its count of the counter right after it.
struct IncrementReply {
  int shard_id = 0;
  int64_t count = 0;
  int64_t window_end = 0;  // for windowed counters: when the current window ends
  bool operator==(const IncrementReply&) const = default;
};

// Increments of many counters in one request, all in the same window
// (0: plain counters): POST /increment {"increments":[...]} or `COUNTER
// VALUE` lines. A shard applies its share of one as a whole or not at all.
struct ManyRequest {
  static constexpr size_t kMaxItems = 100000;
  struct Item {
    std::string counter;  // a valid name (core/counter_name.h)
    int64_t value = 0;
    bool operator==(const Item&) const = default;
  };
  std::vector<Item> items;  // 1 to kMaxItems of them
  int64_t window = 0;
  std::string idempotency_key = {};  // "" when the request carries none
  bool operator==(const ManyRequest&) const = default;
};

// A shard's answer to its share of a ManyRequest.
struct ManyReply {
  int shard_id = 0;
  int64_t applied = 0;     // increments counted
  int64_t window_end = 0;  // for windowed counters: when the current window ends
  bool operator==(const ManyReply&) const = default;
};

// A shard's part of one counter.
struct CountReply {
  int shard_id = 0;
  int64_t count = 0;
  int64_t window_end = 0;  // as in IncrementReply
  bool operator==(const CountReply&) const = default;
};

// A shard's part of one plain counter, as listed.
struct CounterPart {
  std::string name;
  int64_t count = 0;
  bool operator==(const CounterPart&) const = default;
};

// A page of a shard's plain counters by name: those whose name starts with
// `prefix` and sorts after `after` (bytewise), the first `limit` of them.
struct PageQuery {
  std::string prefix;
  std::string after;  // "": from the first
  size_t limit = 1000;
  bool operator==(const PageQuery&) const = default;
};

// A place in the order of a shard's plain counters by count, highest first,
// ties by name (bytewise, ascending): the counter (count, name).
struct RankCursor {
  int64_t count = 0;
  std::string name;
  bool operator==(const RankCursor&) const = default;
};

// A page of a shard's plain counters by count, highest first (ties by name):
// those whose name starts with `prefix`, after `after` when given, the first
// `limit` of them. The sorted access of a threshold-algorithm top-K.
struct RankQuery {
  std::string prefix;
  bool from_start = true;  // false: after `after`
  RankCursor after;
  size_t limit = 100;
  bool operator==(const RankQuery&) const = default;
};

// True if `part` comes before the counter at `cursor` in the order by count,
// highest first, ties by name.
bool RanksBefore(const CounterPart& part, const RankCursor& cursor);
// The page `query` asks for, out of every part a shard holds (any order).
std::vector<CounterPart> SelectPage(std::vector<CounterPart> parts, const PageQuery& query);
// The rank page `query` asks for, out of every part a shard holds.
std::vector<CounterPart> SelectRank(std::vector<CounterPart> parts, const RankQuery& query);

class ShardClient {
 public:
  virtual ~ShardClient() = default;

  // Adds request.value to the shard's part of the counter. Returns the
  // shard's reply, or a Status whose message names the shard and its address:
  // kUnavailable when the shard surely did not apply it, kTimeout when the
  // outcome is unknown, or the shard's own refusal (kInvalidArgument,
  // kOutOfRange).
  virtual Result<IncrementReply> Increment(const IncrementRequest& request) = 0;

  // Applies every increment of `request` (one shard's share of a batch of
  // many counters) as a whole: all of them, or none with a Status as for
  // Increment. This default returns kInternal: the client cannot.
  virtual Result<ManyReply> IncrementMany(const ManyRequest& request);

  // Runs a task on a thread that may block (core/worker_pool.h).
  using RunBlocking = std::function<void(std::function<void()> task)>;
  using IncrementDone = std::function<void(Result<IncrementReply>)>;
  // Increment without waiting: calls `done` once with what Increment would
  // return, on this thread or another. For an aggregator whose event loops
  // never wait on a shard: a client that can send without blocking (over
  // the loop's own connections) overrides it; this one runs Increment as a
  // task of `blocking`.
  virtual void IncrementAsync(const IncrementRequest& request, IncrementDone done,
                              const RunBlocking& blocking) {
    blocking([this, request, done = std::move(done)] { done(Increment(request)); });
  }

  // Returns the shard's part of `counter` (0 if it never saw it), or a Status
  // as for Increment.
  virtual Result<CountReply> Count(const CounterRef& counter) = 0;

  // Returns the shard's part of every plain counter whose name starts with
  // `prefix`, in no particular order, or a Status as for Increment.
  virtual Result<std::vector<CounterPart>> List(const std::string& prefix) = 0;
  // A page of the shard's plain counters by name (PageQuery), in name order,
  // or a Status as for Increment. This default sorts what List returns; the
  // shards' own clients ask for the page alone.
  virtual Result<std::vector<CounterPart>> ListPage(const PageQuery& query);
  // A page of the shard's plain counters by count, highest first (RankQuery),
  // or a Status as for Increment. Default: sorts what List returns.
  virtual Result<std::vector<CounterPart>> Rank(const RankQuery& query);
  // The shard's part of each plain counter named, in order (0 for one it does
  // not hold), or a Status as for Increment. Default: one Count each.
  virtual Result<std::vector<int64_t>> Counts(const std::vector<std::string>& names);

  // Removes the counter `name` (its plain count and every window of it) and
  // returns the plain count removed, or a Status as for Increment.
  virtual Result<int64_t> Reset(const std::string& name) = 0;

  // Names the shard for people, e.g. "shard 1 at http://127.0.0.1:3001".
  virtual std::string Describe() const = 0;
  // Where the shard is: its URL, or "in process".
  virtual std::string Address() const = 0;

  // True when calls never block on I/O, so the aggregator may call them inline
  // rather than in parallel.
  virtual bool InProcess() const { return false; }
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_SHARD_CLIENT_H_
