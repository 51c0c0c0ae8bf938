// What `shardctl top` reads from the aggregator at each interval (a
// TopSample), and what it shows (a TopView): the rates between two samples,
// the latency of the increments answered in between, each shard's part, the
// largest counters. Pure functions of their arguments; thread-safe.
#ifndef SHARDCTL_CMD_TOP_STATS_H_
#define SHARDCTL_CMD_TOP_STATS_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/aggregator.h"
#include "core/prometheus_text.h"

namespace shardctl::cmd {

// One bucket of a Prometheus histogram: how many observations were at most
// `upper_bound` (cumulative, as a _bucket series with its `le` label).
struct HistogramBucket {
  double upper_bound = 0;  // +Inf for the last
  double count = 0;
  bool operator==(const HistogramBucket&) const = default;
};

// The q-quantile (0 <= q <= 1) of the observations counted in `buckets`, as
// PromQL's histogram_quantile() computes it: the bucket the rank q * count
// falls in, and a linear interpolation inside it (the first bucket starts at
// 0); a rank in the +Inf bucket gives the highest finite upper bound. A count
// lower than the bucket below it is taken as equal to it (the series were not
// read at one instant). Returns nullopt when nothing was counted, or when
// there are fewer than two buckets or no +Inf bucket.
std::optional<double> HistogramQuantile(double q, std::vector<HistogramBucket> buckets);

// The upper bound of the highest bucket of `buckets` (cumulative) that holds
// an observation: the largest one is at most that. +Inf when the largest is
// above every finite bound; nullopt when nothing was counted.
std::optional<double> HighestBucketBound(const std::vector<HistogramBucket>& buckets);

// The observations between two readings of a histogram: each bucket of
// `current` less the same bucket of `previous` (0 if it had none). When any
// count went down (the server restarted), `current` as it is, as PromQL's
// rate() takes a counter that went down to have started again from 0.
std::vector<HistogramBucket> BucketIncrease(const std::vector<HistogramBucket>& previous,
                                            const std::vector<HistogramBucket>& current);

// The increase of a counter between two readings: their difference, or
// `current` when it went down (a restart), as PromQL's rate().
double CounterIncrease(double previous, double current);

// What top takes from the aggregator's GET /metrics: its own listener's
// POST /increment requests.
struct IncrementMetrics {
  // The sum of shardctl_http_requests_total{listener="aggregator",
  // route="/increment"} over the 2xx codes: increment requests answered.
  double answered = 0;
  // shardctl_http_request_duration_seconds_bucket{listener="aggregator",
  // route="/increment"}, by upper bound; empty when the series is absent.
  std::vector<HistogramBucket> latency;
};

// Picks IncrementMetrics out of the samples of a /metrics answer. Series
// that are absent count as 0 (nothing happened yet).
IncrementMetrics ExtractIncrementMetrics(const std::vector<core::MetricSample>& samples);

// One reading of the aggregator. A part that failed keeps why, in words.
struct TopSample {
  std::chrono::steady_clock::time_point at;    // when it was taken, for rates
  std::chrono::system_clock::time_point wall;  // the same, for the clock shown
  // GET /total: the default counter's total (none when it failed: a shard down).
  std::optional<int64_t> total;
  std::string total_error;
  // GET /shards.
  std::vector<core::ShardState> shards;
  // GET /counters?top=K: the K largest plain counters, largest first.
  std::optional<std::vector<core::CounterTotal>> counters;
  std::string counters_error;
  bool counters_complete = false;  // fewer than K came: these are all there are
  // GET /metrics: none when the server has none (404, serve --no-metrics)
  // or the answer could not be used; metrics_error says which.
  std::optional<IncrementMetrics> metrics;
  std::string metrics_error;
};

struct LatencySummary {
  double requests = 0;  // increment requests answered in the interval
  double p50 = 0;       // seconds
  double p99 = 0;
  double max_bound = 0;             // the slowest took at most this long (+Inf: above every bucket)
  double highest_finite_bound = 0;  // the histogram's last bucket below +Inf
};

struct ShardView {
  int id = 0;
  bool up = true;
  std::optional<int64_t> count;  // its part of the default counter
  // Its share of the counts: |count| over the sum of every shard's |count|.
  std::optional<double> share;
  std::optional<double> per_second;  // the change of its count
  std::string last_error;
};

struct CounterView {
  std::string name;
  int64_t total = 0;
  std::optional<double> per_second;  // none: not seen in the previous sample
};

// What top shows for one interval. Rates are per second over `seconds`.
struct TopView {
  std::chrono::system_clock::time_point wall;
  double seconds = 0;  // since the previous sample; 0 for the first (no rates yet)
  std::optional<int64_t> total;
  std::string total_error;
  std::optional<double> total_per_second;       // the change of the default counter
  bool has_metrics = false;                     // the server answered /metrics
  std::string metrics_error;                    // why not, when it did not
  std::optional<double> increments_per_second;  // increment requests answered 2xx
  std::optional<LatencySummary> latency;        // none: no increment answered in the interval
  int shards_up = 0;
  std::vector<ShardView> shards;
  std::optional<std::vector<CounterView>> counters;
  std::string counters_error;
};

// The view of `current`, with rates since `previous` (none: the first sample,
// and no rates). REQUIRES: previous == nullptr or previous->at <= current.at.
TopView MakeTopView(const TopSample* previous, const TopSample& current);

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_TOP_STATS_H_
