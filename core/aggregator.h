// Aggregator: routes each increment to its shard and combines every shard's
// part for totals, listings and resets. It sees shards only through
// ShardClient, so tests can give it fakes. Thread-safe when its ShardClients are.
#ifndef SHARDCTL_CORE_AGGREGATOR_H_
#define SHARDCTL_CORE_AGGREGATOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/shard_client.h"
#include "core/status.h"

namespace shardctl::core {

// A counter's total over every shard.
struct TotalReply {
  int64_t total = 0;
  std::vector<int64_t> parts;  // parts[i]: shard i's part
  int64_t window_end = 0;      // for windowed counters: when the current window ends
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
  explicit Aggregator(std::vector<std::unique_ptr<ShardClient>> shards);

  int shard_count() const { return static_cast<int>(shards_.size()); }

  // Sends the increment to shard ShardFor(request.value, shard_count()).
  // Returns that shard's reply, or its failure as the shard client reported it.
  Result<IncrementReply> Increment(const IncrementRequest& request);

  // The following ask every shard, in parallel when they are remote. None
  // ever answers from part of the shards: if any shard fails, they return a
  // Status naming every shard that failed (with the first failure's code).

  // Returns the counter's total; kInternal if it leaves int64.
  Result<TotalReply> Total(const CounterRef& counter);

  // Returns the plain counters the query selects, with their totals.
  // REQUIRES: 1 <= query.limit <= ListQuery::kMaxLimit, query.top >= 0.
  Result<CounterList> List(const ListQuery& query);

  // Removes the counter from every shard and returns the total removed. If a
  // shard fails, the others have still removed their parts; the Status says
  // which failed.
  Result<int64_t> Reset(const std::string& name);

 private:
  // Calls `call(shard)` on every shard and returns the results in shard order.
  template <typename T, typename Call>
  std::vector<Result<T>> AskEveryShard(const Call& call);

  std::vector<std::unique_ptr<ShardClient>> shards_;
  bool all_in_process_ = true;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_AGGREGATOR_H_
