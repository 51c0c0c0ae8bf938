// ShardClient: how the aggregator talks to one shard, wherever it runs.
// Implementations: LocalShardClient (core/shard.h, in process) and
// net::HttpShardClient (over HTTP). Implementations must be thread-safe.
#ifndef SHARDCTL_CORE_SHARD_CLIENT_H_
#define SHARDCTL_CORE_SHARD_CLIENT_H_

#include <cstdint>
#include <string>

#include "core/status.h"

namespace shardctl::core {

// A shard's answer to an increment: its id and its count right after it.
struct IncrementReply {
  int shard_id = 0;
  int64_t count = 0;
  bool operator==(const IncrementReply&) const = default;
};

class ShardClient {
 public:
  virtual ~ShardClient() = default;

  // Adds `value` to the shard's count. Returns the shard's reply, or a Status
  // whose message names the shard and its address: kUnavailable when the shard
  // surely did not apply it, kTimeout when the outcome is unknown, or the
  // shard's own refusal (kInvalidArgument, kOutOfRange).
  virtual Result<IncrementReply> Increment(int64_t value) = 0;

  // Returns the shard's count, or a Status as for Increment.
  virtual Result<int64_t> Count() = 0;

  // Names the shard for people, e.g. "shard 1 at http://127.0.0.1:3001".
  virtual std::string Describe() const = 0;

  // True when calls never block on I/O, so the aggregator may call them inline
  // rather than in parallel.
  virtual bool InProcess() const { return false; }
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_SHARD_CLIENT_H_
