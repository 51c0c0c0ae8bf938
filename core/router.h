// Routing of increments to shards: shard = value mod N, never negative; or,
// for an increment with an idempotency key, by a hash of the key. Pure
// functions; thread-safe.
#ifndef SHARDCTL_CORE_ROUTER_H_
#define SHARDCTL_CORE_ROUTER_H_

#include <cstdint>
#include <string_view>

namespace shardctl::core {

// Returns the shard, in [0, shard_count), that owns `value`: the mathematical
// modulo, so -1 goes to the last shard, as it does in Python.
// REQUIRES: shard_count > 0.
int ShardFor(int64_t value, int shard_count);

// Returns the shard, in [0, shard_count), for an increment with the
// idempotency key `key`: FNV-1a (64 bits) of the key's bytes mod N. Stable
// across processes, hosts and versions, so every aggregator sends a retry to
// the shard that remembers its key. For routing that does not go by the value
// (round robin, random). REQUIRES: shard_count > 0.
int ShardForKey(std::string_view key, int shard_count);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_ROUTER_H_
