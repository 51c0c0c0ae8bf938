// Counter arithmetic that refuses to wrap around, and a thread-safe counter.
#ifndef SHARDCTL_CORE_COUNTER_H_
#define SHARDCTL_CORE_COUNTER_H_

#include <atomic>
#include <cstdint>

#include "core/status.h"

namespace shardctl::core {

// Returns a + b, or kOutOfRange when the sum leaves int64.
Result<int64_t> CheckedAdd(int64_t a, int64_t b);

// One int64 count. Thread-safe: Add and Load may race freely; every Add is
// applied exactly once or refused as a whole.
class Counter {
 public:
  // Adds `delta` and returns the count right after this addition; returns
  // kOutOfRange, with the count unchanged, when the result would leave int64.
  Result<int64_t> Add(int64_t delta);
  int64_t Load() const { return value_.load(std::memory_order_acquire); }

 private:
  std::atomic<int64_t> value_{0};
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_COUNTER_H_
