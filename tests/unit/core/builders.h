// Small builders that the core unit tests share: int64 limits, counter
// references and increment requests.
#ifndef SHARDCTL_TESTS_UNIT_CORE_BUILDERS_H_
#define SHARDCTL_TESTS_UNIT_CORE_BUILDERS_H_

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "core/shard_client.h"

namespace shardctl::core::test {

inline constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

inline CounterRef Plain(std::string name) { return CounterRef{std::move(name), 0}; }
inline CounterRef Windowed(std::string name, int64_t window) {
  return CounterRef{std::move(name), window};
}
inline IncrementRequest Request(int64_t value, CounterRef counter = {}) {
  IncrementRequest request;
  request.value = value;
  request.counter = std::move(counter);
  return request;
}
inline IncrementRequest KeyedRequest(int64_t value, std::string key) {
  IncrementRequest request = Request(value);
  request.idempotency_key = std::move(key);
  return request;
}

}  // namespace shardctl::core::test

#endif  // SHARDCTL_TESTS_UNIT_CORE_BUILDERS_H_
