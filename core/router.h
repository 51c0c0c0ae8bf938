// Routing of increments to shards: shard = value mod N, never negative.
// Pure functions; thread-safe.
#ifndef SHARDCTL_CORE_ROUTER_H_
#define SHARDCTL_CORE_ROUTER_H_

#include <cstdint>

namespace shardctl::core {

// Returns the shard, in [0, shard_count), that owns `value`: the mathematical
// modulo, so -1 goes to the last shard, as it does in Python.
// REQUIRES: shard_count > 0.
int ShardFor(int64_t value, int shard_count);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_ROUTER_H_
