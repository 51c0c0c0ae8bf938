// Routing of increments to shards: shard = value mod N, never negative; or,
// for an increment with an idempotency key, by a hash of the key. Pure
// functions; thread-safe.
#ifndef SHARDCTL_CORE_ROUTER_H_
#define SHARDCTL_CORE_ROUTER_H_

#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace shardctl::core {

// The original's rule: shard `value mod shard_count`, with a mathematical
// modulo, so negative values land in 0..shard_count-1 too.
// REQUIRES: shard_count > 0.
int ShardFor(int64_t value, int shard_count);

// The shard for a request that carries an idempotency key: FNV-1a (64 bits)
// of the key's bytes mod N. Stable across processes, hosts and versions, so
// every aggregator sends a retry to the shard that remembers its key. Used
// when routing does not go by the value. REQUIRES: shard_count > 0.
int ShardForKey(std::string_view key, int shard_count);

// How the aggregator picks an increment's shard.
enum class Routing {
  kValue,       // ShardFor(value): the original's; each value has its shard
  kRoundRobin,  // the next shard in turn; another one if it is down
  kRandom,      // a random shard; another one if it is down
};

// Parses "value", "round-robin" or "random"; kInvalidArgument otherwise.
Result<Routing> ParseRouting(std::string_view text);
std::string_view RoutingName(Routing routing);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_ROUTER_H_
