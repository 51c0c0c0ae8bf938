// What `shardctl bench --op inc` sends: a fixed, documented sequence of
// values, so that a run's effect on the total is known in advance. Pure
// functions; thread-safe.
#ifndef SHARDCTL_CMD_BENCH_WORKLOAD_H_
#define SHARDCTL_CMD_BENCH_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/shard_client.h"

namespace shardctl::cmd {

// Increment number i of a run (counting from 0, over every connection) adds
// 1 + i mod 60: 1, 2, ..., 60, 1, 2, ... 60 is divisible by 1 to 6, 10, 12,
// 15, 20 and 30, so with that many shards (value mod N routing) each shard
// gets the same number of increments per cycle.
inline constexpr int64_t kValueCycle = 60;
int64_t BenchValue(int64_t increment_index);

// The sum of the values of increments 0 to count-1. REQUIRES: count >= 0.
int64_t BenchValueSum(int64_t count);

// One request's body and what it adds.
struct BenchBody {
  std::string json;
  int64_t increments = 0;
  int64_t sum = 0;  // of its values
};

// The body of request number r of a run whose requests carry `batch`
// increments each: increments r*batch to r*batch+batch-1. With batch 1 it is
// POST /increment's {"value":V}; with more, the batch form
// {"values":[V1,...,VN]}. Either has "counter" and "window" when `counter`
// is not the default counter. REQUIRES: batch >= 1, counter valid.
BenchBody IncrementBody(int64_t request, int batch, const core::CounterRef& counter);

// The bodies of requests 0 to kValueCycle-1; request r sends
// bodies[r % kValueCycle], since request r + 60 starts at the same value.
std::vector<BenchBody> IncrementBodies(int batch, const core::CounterRef& counter);

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_BENCH_WORKLOAD_H_
