// Int128: sums of 64-bit counts (a total over shards, a batch's sum) kept
// wide enough that adding never overflows, and FitsInt64 to check one before
// it is answered as a count. Header-only; pure.
#ifndef SHARDCTL_CORE_INT128_H_
#define SHARDCTL_CORE_INT128_H_

#include <cstdint>
#include <limits>

namespace shardctl::core {

__extension__ using Int128 = __int128;  // a GCC/Clang extension, hence __extension__

inline bool FitsInt64(Int128 value) {
  return value >= std::numeric_limits<int64_t>::min() &&
         value <= std::numeric_limits<int64_t>::max();
}

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_INT128_H_
