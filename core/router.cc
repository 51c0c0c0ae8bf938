#include "core/router.h"

#include <cassert>

#include <fmt/format.h>

namespace shardctl::core {

int ShardFor(int64_t value, int shard_count) {
  assert(shard_count > 0);
  // C++ '%' truncates toward zero, so a negative value gives a negative rest.
  int64_t rest = value % shard_count;
  if (rest < 0) rest += shard_count;
  return static_cast<int>(rest);
}

int ShardForKey(std::string_view key, int shard_count) {
  assert(shard_count > 0);
  uint64_t hash = 14695981039346656037u;
  for (unsigned char byte : key) {
    hash ^= byte;
    hash *= 1099511628211u;
  }
  return static_cast<int>(hash % static_cast<uint64_t>(shard_count));
}

Result<Routing> ParseRouting(std::string_view text) {
  if (text == "value") return Routing::kValue;
  if (text == "round-robin") return Routing::kRoundRobin;
  if (text == "random") return Routing::kRandom;
  return InvalidArgument(
      fmt::format("unknown routing '{}'; use value, round-robin or random", text));
}

std::string_view RoutingName(Routing routing) {
  switch (routing) {
    case Routing::kValue: return "value";
    case Routing::kRoundRobin: return "round-robin";
    case Routing::kRandom: return "random";
  }
  return "value";
}

}  // namespace shardctl::core
