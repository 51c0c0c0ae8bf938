// Aggregator: routes each increment to its shard and sums every shard for the
// total. It sees shards only through ShardClient, so tests can give it fakes.
// Thread-safe when its ShardClients are.
#ifndef SHARDCTL_CORE_AGGREGATOR_H_
#define SHARDCTL_CORE_AGGREGATOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "core/shard_client.h"
#include "core/status.h"

namespace shardctl::core {

class Aggregator {
 public:
  // `shards[i]` is shard i. REQUIRES: !shards.empty(), no null entries.
  explicit Aggregator(std::vector<std::unique_ptr<ShardClient>> shards);

  int shard_count() const { return static_cast<int>(shards_.size()); }

  // Sends `value` to shard ShardFor(value, shard_count()). Returns that
  // shard's reply, or its failure as the shard client reported it.
  Result<IncrementReply> Increment(int64_t value);

  // Asks every shard for its count, in parallel when they are remote, and
  // returns the sum. Never a partial sum: if any shard fails, returns a Status
  // naming every shard that failed (the first failure's code); if the sum
  // leaves int64, kInternal.
  Result<int64_t> Total();

 private:
  std::vector<std::unique_ptr<ShardClient>> shards_;
  bool all_in_process_ = true;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_AGGREGATOR_H_
