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

Result<int64_t> Counter::Add(int64_t delta) {
  int64_t current = value_.load(std::memory_order_relaxed);
  for (;;) {
    Result<int64_t> next = CheckedAdd(current, delta);
    if (!next.ok()) {
      return OutOfRange(
          fmt::format("adding {} to the count {} would overflow a 64-bit count", delta, current));
    }
    if (value_.compare_exchange_weak(current, *next, std::memory_order_acq_rel,
                                     std::memory_order_relaxed)) {
      return *next;
    }
  }
}

}  // namespace shardctl::core
