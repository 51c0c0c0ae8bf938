#include "core/counter.h"

#include <fmt/format.h>

namespace shardctl::core {

Result<int64_t> CheckedAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return OutOfRange(fmt::format("{} + {} does not fit in a 64-bit count", a, b));
  }
  return sum;
}

}  // namespace shardctl::core
