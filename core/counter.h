// Counter arithmetic that refuses to wrap around. Pure; thread-safe.
#ifndef SHARDCTL_CORE_COUNTER_H_
#define SHARDCTL_CORE_COUNTER_H_

#include <cstdint>

#include "core/status.h"

namespace shardctl::core {

// Returns a + b, or kOutOfRange when the sum leaves int64.
Result<int64_t> CheckedAdd(int64_t a, int64_t b);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_COUNTER_H_
