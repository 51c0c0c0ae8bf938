#include "core/shard.h"

#include <fmt/format.h>

namespace shardctl::core {

Result<IncrementReply> Shard::Increment(int64_t value) {
  Result<int64_t> count = counter_.Add(value);
  if (!count.ok()) {
    return OutOfRange(fmt::format("shard {}: {}", id_, count.status().message()));
  }
  return IncrementReply{id_, *count};
}

Result<IncrementReply> LocalShardClient::Increment(int64_t value) {
  return shard_.Increment(value);
}

std::string LocalShardClient::Describe() const {
  return fmt::format("shard {} (in process)", shard_.id());
}

}  // namespace shardctl::core
