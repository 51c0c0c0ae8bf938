#include "cmd/bench_workload.h"

#include <fmt/format.h>

#include "core/protocol.h"

namespace shardctl::cmd {

int64_t BenchValue(int64_t increment_index) { return 1 + increment_index % kValueCycle; }

int64_t BenchValueSum(int64_t count) {
  constexpr int64_t kCycleSum = kValueCycle * (kValueCycle + 1) / 2;  // 1 + ... + 60
  int64_t rest = count % kValueCycle;                                  // 1 + ... + rest
  return count / kValueCycle * kCycleSum + rest * (rest + 1) / 2;
}

BenchBody IncrementBody(int64_t request, int batch, const core::CounterRef& counter) {
  BenchBody body;
  body.increments = batch;
  int64_t first = request * batch;
  if (batch == 1) {
    int64_t value = BenchValue(first);
    body.json = core::FormatIncrementRequest({.value = value, .counter = counter});
    body.sum = value;
    return body;
  }
  body.json = R"({"values":[)";
  for (int64_t i = first; i < first + batch; ++i) {
    int64_t value = BenchValue(i);
    body.json += fmt::format("{}{}", i == first ? "" : ",", value);
    body.sum += value;
  }
  body.json += "]";
  // Names are letters, digits and _ . : - / only: nothing to escape, as in
  // core::FormatIncrementRequest.
  if (!counter.is_default()) body.json += fmt::format(R"(,"counter":"{}")", counter.name);
  if (counter.window > 0) body.json += fmt::format(R"(,"window":{})", counter.window);
  body.json += "}";
  return body;
}

std::vector<BenchBody> IncrementBodies(int batch, const core::CounterRef& counter) {
  std::vector<BenchBody> bodies;
  for (int64_t r = 0; r < kValueCycle; ++r) bodies.push_back(IncrementBody(r, batch, counter));
  return bodies;
}

}  // namespace shardctl::cmd
