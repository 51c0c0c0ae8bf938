// Shard: one slice of the sharded counter, and LocalShardClient, which lets
// an aggregator in the same process use a Shard without any network hop.
// Thread-safe.
#ifndef SHARDCTL_CORE_SHARD_H_
#define SHARDCTL_CORE_SHARD_H_

#include <cstdint>
#include <string>

#include "core/counter.h"
#include "core/shard_client.h"
#include "core/status.h"

namespace shardctl::core {

class Shard {
 public:
  // REQUIRES: id >= 0.
  explicit Shard(int id) : id_(id) {}
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  int id() const { return id_; }

  // Adds `value` (any int64, negative included: shards take whatever the
  // aggregator routes to them). Returns the reply with the new count, or
  // kOutOfRange with the count unchanged.
  Result<IncrementReply> Increment(int64_t value);
  int64_t Count() const { return counter_.Load(); }

 private:
  const int id_;
  Counter counter_;
};

class LocalShardClient : public ShardClient {
 public:
  // REQUIRES: `shard` outlives this client.
  explicit LocalShardClient(Shard& shard) : shard_(shard) {}

  Result<IncrementReply> Increment(int64_t value) override;
  Result<int64_t> Count() override { return shard_.Count(); }
  std::string Describe() const override;
  bool InProcess() const override { return true; }

 private:
  Shard& shard_;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_SHARD_H_
