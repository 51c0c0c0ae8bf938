// Reading the Prometheus text exposition format (version 0.0.4), the answer
// of GET /metrics: its samples, for a client that shows them (shardctl top).
// Pure functions; thread-safe.
#ifndef SHARDCTL_CORE_PROMETHEUS_TEXT_H_
#define SHARDCTL_CORE_PROMETHEUS_TEXT_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace shardctl::core {

// One sample line: `name{label="value",...} value [timestamp]`.
struct MetricSample {
  std::string name;  // a histogram's series end in _bucket, _sum and _count
  // In the order written; values unescaped (\\, \" and \n).
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;  // NaN, +Inf and -Inf as written

  // The value of the label `label`, or nullopt when the sample has none.
  std::optional<std::string_view> Label(std::string_view label) const;
};

// The samples of a whole exposition, in order; comment lines (# HELP,
// # TYPE, any other #) and blank lines are skipped, and a timestamp after a
// value is checked and dropped. Returns kBadGateway naming the first line
// that is not a sample and what is wrong with it.
Result<std::vector<MetricSample>> ParsePrometheusText(std::string_view text);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_PROMETHEUS_TEXT_H_
