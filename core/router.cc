#include "core/router.h"

#include <cassert>

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
  uint64_t hash = 0xcbf29ce484222325u;  // FNV-1a offset basis and prime
  for (unsigned char byte : key) hash = (hash ^ byte) * 0x100000001b3u;
  return static_cast<int>(hash % static_cast<uint64_t>(shard_count));
}

}  // namespace shardctl::core
