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

}  // namespace shardctl::core
