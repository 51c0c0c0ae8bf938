#include "cmd/top_stats.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <string_view>
#include <system_error>

namespace shardctl::cmd {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool ByBound(const HistogramBucket& a, const HistogramBucket& b) {
  return a.upper_bound < b.upper_bound;
}

// A bucket's `le` label: a float, or "+Inf".
std::optional<double> ParseBound(std::string_view text) {
  if (text == "+Inf" || text == "Inf" || text == "inf" || text == "+inf") return kInf;
  double bound = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), bound);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return bound;
}

bool IsAggregatorIncrement(const core::MetricSample& sample) {
  return sample.Label("listener") == "aggregator" && sample.Label("route") == "/increment";
}

// The change from `before` to `after` per second, in doubles: the
// difference of two int64 counts may not fit in one.
double PerSecond(int64_t before, int64_t after, double seconds) {
  return (static_cast<double>(after) - static_cast<double>(before)) / seconds;
}

}  // namespace

std::optional<double> HistogramQuantile(double q, std::vector<HistogramBucket> buckets) {
  std::sort(buckets.begin(), buckets.end(), ByBound);
  if (buckets.size() < 2 || !std::isinf(buckets.back().upper_bound)) return std::nullopt;
  for (size_t i = 1; i < buckets.size(); ++i) {
    buckets[i].count = std::max(buckets[i].count, buckets[i - 1].count);
  }
  const double observed = buckets.back().count;
  if (!(observed > 0)) return std::nullopt;
  double rank = q * observed;
  size_t b = 0;
  while (b + 1 < buckets.size() && buckets[b].count < rank) ++b;
  if (b + 1 == buckets.size()) return buckets[b - 1].upper_bound;  // the +Inf bucket
  if (b == 0 && buckets[0].upper_bound <= 0) return buckets[0].upper_bound;
  double start = b == 0 ? 0 : buckets[b - 1].upper_bound;
  double below = b == 0 ? 0 : buckets[b - 1].count;
  double inside = buckets[b].count - below;
  if (!(inside > 0)) return start;
  return start + (buckets[b].upper_bound - start) * ((rank - below) / inside);
}

std::optional<double> HighestBucketBound(const std::vector<HistogramBucket>& buckets) {
  std::vector<HistogramBucket> sorted = buckets;
  std::sort(sorted.begin(), sorted.end(), ByBound);
  // The first bucket whose cumulative count reaches the whole count holds
  // the largest observation.
  double observed = 0;
  for (const HistogramBucket& bucket : sorted) observed = std::max(observed, bucket.count);
  if (!(observed > 0)) return std::nullopt;
  for (const HistogramBucket& bucket : sorted) {
    if (bucket.count >= observed) return bucket.upper_bound;
  }
  return std::nullopt;  // not reached: some bucket holds `observed`
}

std::vector<HistogramBucket> BucketIncrease(const std::vector<HistogramBucket>& previous,
                                            const std::vector<HistogramBucket>& current) {
  std::map<double, double> before;
  for (const HistogramBucket& bucket : previous) before[bucket.upper_bound] = bucket.count;
  std::vector<HistogramBucket> increase;
  for (const HistogramBucket& bucket : current) {
    auto it = before.find(bucket.upper_bound);
    double old = it == before.end() ? 0 : it->second;
    if (bucket.count < old) return current;  // restarted
    increase.push_back({bucket.upper_bound, bucket.count - old});
  }
  return increase;
}

double CounterIncrease(double previous, double current) {
  return current < previous ? current : current - previous;
}

IncrementMetrics ExtractIncrementMetrics(const std::vector<core::MetricSample>& samples) {
  IncrementMetrics metrics;
  for (const core::MetricSample& sample : samples) {
    if (!IsAggregatorIncrement(sample)) continue;
    if (sample.name == "shardctl_http_requests_total") {
      std::optional<std::string_view> code = sample.Label("code");
      if (code && code->size() == 3 && code->front() == '2') metrics.answered += sample.value;
    } else if (sample.name == "shardctl_http_request_duration_seconds_bucket") {
      std::optional<std::string_view> le = sample.Label("le");
      std::optional<double> bound = le ? ParseBound(*le) : std::nullopt;
      if (bound) metrics.latency.push_back({*bound, sample.value});
    }
  }
  std::sort(metrics.latency.begin(), metrics.latency.end(), ByBound);
  return metrics;
}

TopView MakeTopView(const TopSample* previous, const TopSample& current) {
  TopView view;
  view.wall = current.wall;
  if (previous != nullptr && current.at > previous->at)
    view.seconds = std::chrono::duration<double>(current.at - previous->at).count();
  const bool rates = view.seconds > 0;

  view.total = current.total;
  view.total_error = current.total_error;
  if (rates && current.total && previous->total) {
    view.total_per_second = PerSecond(*previous->total, *current.total, view.seconds);
  }

  view.has_metrics = current.metrics.has_value();
  view.metrics_error = current.metrics_error;
  if (rates && current.metrics && previous->metrics) {
    view.increments_per_second =
        CounterIncrease(previous->metrics->answered, current.metrics->answered) / view.seconds;
    std::vector<HistogramBucket> interval =
        BucketIncrease(previous->metrics->latency, current.metrics->latency);
    std::optional<double> p50 = HistogramQuantile(0.5, interval);
    std::optional<double> p99 = HistogramQuantile(0.99, interval);
    std::optional<double> max_bound = HighestBucketBound(interval);
    if (p50 && p99 && max_bound) {
      double requests = 0, highest_finite = 0;
      for (const HistogramBucket& bucket : interval) {
        requests = std::max(requests, bucket.count);
        if (!std::isinf(bucket.upper_bound))
          highest_finite = std::max(highest_finite, bucket.upper_bound);
      }
      view.latency = LatencySummary{requests, *p50, *p99, *max_bound, highest_finite};
    }
  }

  std::map<int, int64_t> counts_before;
  if (rates) {
    for (const core::ShardState& shard : previous->shards) {
      if (shard.count) counts_before[shard.id] = *shard.count;
    }
  }
  double magnitude = 0;
  for (const core::ShardState& shard : current.shards) {
    if (shard.count) magnitude += std::abs(static_cast<double>(*shard.count));
  }
  for (const core::ShardState& shard : current.shards) {
    ShardView row;
    row.id = shard.id;
    row.up = shard.up;
    row.count = shard.count;
    row.last_error = shard.last_error;
    if (shard.up) ++view.shards_up;
    if (shard.count && magnitude > 0) {
      row.share = std::abs(static_cast<double>(*shard.count)) / magnitude;
    } else if (shard.count) {
      row.share = 0;
    }
    auto before = counts_before.find(shard.id);
    if (shard.count && before != counts_before.end()) {
      row.per_second = PerSecond(before->second, *shard.count, view.seconds);
    }
    view.shards.push_back(std::move(row));
  }

  view.counters_error = current.counters_error;
  if (current.counters) {
    std::map<std::string, int64_t, std::less<>> totals_before;
    const bool known_before = rates && previous->counters.has_value();
    if (known_before) {
      for (const core::CounterTotal& counter : *previous->counters) {
        totals_before[counter.name] = counter.total;
      }
    }
    view.counters.emplace();
    for (const core::CounterTotal& counter : *current.counters) {
      CounterView row{counter.name, counter.total, std::nullopt};
      auto before = totals_before.find(counter.name);
      if (before != totals_before.end()) {
        row.per_second = PerSecond(before->second, counter.total, view.seconds);
      } else if (known_before && previous->counters_complete) {
        // Every counter was listed before, and this one was not: it is new.
        row.per_second = PerSecond(0, counter.total, view.seconds);
      }
      view.counters->push_back(std::move(row));
    }
  }
  return view;
}

}  // namespace shardctl::cmd
