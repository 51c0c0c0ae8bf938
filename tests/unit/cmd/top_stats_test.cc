#include "cmd/top_stats.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::cmd {
namespace {

using Buckets = std::vector<HistogramBucket>;

constexpr double kInf = std::numeric_limits<double>::infinity();

// --- HistogramQuantile ----------------------------------------------------------

TEST(TopHistogramQuantileTest, InterpolatesInsideTheBucketTheRankFallsIn) {
  struct Case {
    std::string what;
    double q;
    Buckets buckets;
    std::optional<double> expected;
  };
  for (const Case& c : std::vector<Case>{
           {"middle of the second bucket", 0.5, {{0.1, 0}, {0.2, 10}, {kInf, 10}}, 0.15},
           {"the first bucket starts at 0", 0.5, {{1, 4}, {kInf, 4}}, 0.5},
           {"a quarter into the bucket", 0.25, {{1, 0}, {2, 4}, {kInf, 4}}, 1.25},
           {"q = 1: the top of the last bucket with observations",
            1,
            {{1, 2}, {2, 4}, {kInf, 4}},
            2},
           {"rank exactly a bucket's count: its upper bound", 0.5, {{1, 2}, {2, 4}, {kInf, 4}}, 1},
           {"a rank in +Inf: the highest finite bound", 0.5, {{1, 1}, {2, 1}, {kInf, 10}}, 2},
           {"p99 with one slow request in a hundred",
            0.99,
            {{0.001, 0}, {0.0025, 99}, {0.005, 99}, {0.01, 100}, {kInf, 100}},
            0.001 + 0.0015 * (99.0 / 99.0)},
           {"unsorted buckets are sorted", 0.5, {{kInf, 10}, {0.2, 10}, {0.1, 0}}, 0.15},
           {"a count below the bucket under it is raised to it",
            0.5,
            {{1, 5}, {2, 3}, {kInf, 5}},
            0.5},
           {"a first bucket at or below 0: its bound", 0.5, {{-1, 2}, {kInf, 2}}, -1},
           {"q = 0 in an empty first bucket: its start", 0, {{1, 0}, {2, 4}, {kInf, 4}}, 0},
           {"nothing observed", 0.5, {{1, 0}, {kInf, 0}}, std::nullopt},
           {"no +Inf bucket", 0.5, {{1, 4}, {2, 4}}, std::nullopt},
           {"one bucket", 0.5, {{kInf, 4}}, std::nullopt},
           {"no buckets", 0.5, {}, std::nullopt},
       }) {
    std::optional<double> quantile = HistogramQuantile(c.q, c.buckets);
    ASSERT_EQ(quantile.has_value(), c.expected.has_value()) << c.what;
    if (quantile) {
      EXPECT_DOUBLE_EQ(*quantile, *c.expected) << c.what;
    }
  }
}

TEST(TopHistogramQuantileTest, HighestBucketBoundIsWhereTheCountIsReached) {
  EXPECT_EQ(HighestBucketBound({{0.001, 3}, {0.0025, 5}, {0.005, 5}, {kInf, 5}}), 0.0025);
  EXPECT_EQ(HighestBucketBound({{0.001, 0}, {kInf, 2}}), kInf);
  EXPECT_EQ(HighestBucketBound({{kInf, 5}, {0.001, 5}}), 0.001);  // unsorted
  EXPECT_EQ(HighestBucketBound({{0.001, 0}, {kInf, 0}}), std::nullopt);
  EXPECT_EQ(HighestBucketBound({}), std::nullopt);
}

// --- Increases between two readings --------------------------------------------

TEST(TopIncreaseTest, CounterIncreaseTakesADropForARestart) {
  struct Case {
    double previous, current, expected;
  };
  for (const Case& c :
       std::vector<Case>{{10, 15, 5}, {10, 10, 0}, {0, 7, 7}, {100, 3, 3}, {100, 0, 0}}) {
    EXPECT_EQ(CounterIncrease(c.previous, c.current), c.expected)
        << c.previous << " -> " << c.current;
  }
}

TEST(TopIncreaseTest, BucketIncreaseSubtractsBucketByBucket) {
  EXPECT_EQ(BucketIncrease({{0.1, 2}, {0.2, 5}, {kInf, 6}}, {{0.1, 4}, {0.2, 9}, {kInf, 12}}),
            (Buckets{{0.1, 2}, {0.2, 4}, {kInf, 6}}));
  // A bucket not there before counts from 0.
  EXPECT_EQ(BucketIncrease({}, {{0.1, 4}, {kInf, 5}}), (Buckets{{0.1, 4}, {kInf, 5}}));
  // A count that went down: the server restarted, everything is new.
  EXPECT_EQ(BucketIncrease({{0.1, 20}, {kInf, 30}}, {{0.1, 4}, {kInf, 31}}),
            (Buckets{{0.1, 4}, {kInf, 31}}));
}

// --- ExtractIncrementMetrics ----------------------------------------------------

core::MetricSample Sample(std::string name, std::vector<std::pair<std::string, std::string>> labels,
                          double value) {
  return core::MetricSample{std::move(name), std::move(labels), value};
}

TEST(TopExtractTest, SumsTheAggregatorsAnsweredIncrementsAndTakesTheirBuckets) {
  const std::string requests = "shardctl_http_requests_total";
  const std::string bucket = "shardctl_http_request_duration_seconds_bucket";
  std::vector<core::MetricSample> samples = {
      Sample(requests, {{"listener", "aggregator"}, {"route", "/increment"}, {"code", "200"}}, 40),
      Sample(requests, {{"listener", "aggregator"}, {"route", "/increment"}, {"code", "201"}}, 2),
      Sample(requests, {{"listener", "aggregator"}, {"route", "/increment"}, {"code", "400"}}, 5),
      Sample(requests, {{"listener", "aggregator"}, {"route", "/increment"}, {"code", "503"}}, 6),
      Sample(requests, {{"listener", "aggregator"}, {"route", "/total"}, {"code", "200"}}, 100),
      Sample(requests, {{"listener", "shard0"}, {"route", "/increment"}, {"code", "200"}}, 100),
      Sample(requests, {{"listener", "aggregator"}, {"route", "/increment"}}, 100),  // no code
      Sample(bucket, {{"listener", "aggregator"}, {"route", "/increment"}, {"le", "+Inf"}}, 53),
      Sample(bucket, {{"listener", "aggregator"}, {"route", "/increment"}, {"le", "0.001"}}, 50),
      Sample(bucket, {{"listener", "aggregator"}, {"route", "/increment"}, {"le", "0.0005"}}, 30),
      Sample(bucket, {{"listener", "shard0"}, {"route", "/increment"}, {"le", "0.001"}}, 99),
      Sample(bucket, {{"listener", "aggregator"}, {"route", "/total"}, {"le", "0.001"}}, 99),
      Sample(bucket, {{"listener", "aggregator"}, {"route", "/increment"}, {"le", "x"}}, 99),
      Sample("shardctl_http_request_duration_seconds_count",
             {{"listener", "aggregator"}, {"route", "/increment"}}, 53),
  };
  IncrementMetrics metrics = ExtractIncrementMetrics(samples);
  EXPECT_EQ(metrics.answered, 42);
  EXPECT_EQ(metrics.latency, (Buckets{{0.0005, 30}, {0.001, 50}, {kInf, 53}}));
}

TEST(TopExtractTest, AbsentSeriesAreZeroAndEmpty) {
  IncrementMetrics metrics = ExtractIncrementMetrics(
      {Sample("process_open_fds", {}, 9),
       Sample("shardctl_build_info", {{"version", "0.1.0"}, {"role", "all"}}, 1)});
  EXPECT_EQ(metrics.answered, 0);
  EXPECT_TRUE(metrics.latency.empty());
}

// --- MakeTopView --------------------------------------------------------------

using std::chrono::seconds;

core::ShardState Shard(int id, bool up, std::optional<int64_t> count, std::string error = "") {
  core::ShardState state;
  state.id = id;
  state.up = up;
  state.count = count;
  state.last_error = std::move(error);
  return state;
}

// A sample taken `at` seconds after an arbitrary start.
TopSample SampleAt(int at) {
  TopSample sample;
  sample.at = std::chrono::steady_clock::time_point(seconds(1000 + at));
  sample.wall = std::chrono::system_clock::time_point(seconds(1'800'000'000 + at));
  return sample;
}

TEST(TopViewTest, TheFirstSampleHasValuesButNoRates) {
  TopSample first = SampleAt(0);
  first.total = 30;
  first.shards = {Shard(0, true, 10), Shard(1, true, 20)};
  first.counters = std::vector<core::CounterTotal>{{"a", 5}};
  first.metrics = IncrementMetrics{7, {{0.001, 7}, {kInf, 7}}};
  TopView view = MakeTopView(nullptr, first);
  EXPECT_EQ(view.seconds, 0);
  EXPECT_EQ(view.total, 30);
  EXPECT_EQ(view.total_per_second, std::nullopt);
  EXPECT_TRUE(view.has_metrics);
  EXPECT_EQ(view.increments_per_second, std::nullopt);
  EXPECT_EQ(view.latency, std::nullopt);
  EXPECT_EQ(view.shards_up, 2);
  ASSERT_EQ(view.shards.size(), 2u);
  EXPECT_EQ(view.shards[1].count, 20);
  EXPECT_DOUBLE_EQ(*view.shards[1].share, 2.0 / 3);
  EXPECT_EQ(view.shards[1].per_second, std::nullopt);
  ASSERT_TRUE(view.counters);
  EXPECT_EQ((*view.counters)[0].per_second, std::nullopt);
}

TEST(TopViewTest, RatesAreChangesPerSecondBetweenTwoSamples) {
  TopSample before = SampleAt(0);
  before.total = 100;
  before.shards = {Shard(0, true, 40), Shard(1, true, 60)};
  before.counters = std::vector<core::CounterTotal>{{"a", 50}, {"b", 20}};
  before.metrics = IncrementMetrics{1000, {{0.001, 900}, {0.002, 1000}, {kInf, 1000}}};
  TopSample now = SampleAt(2);
  now.total = 300;
  now.shards = {Shard(0, true, 140), Shard(1, true, 160)};
  now.counters = std::vector<core::CounterTotal>{{"a", 250}, {"c", 40}};
  // 200 answered in 2 s: 100 in the first bucket, 100 in the second.
  now.metrics = IncrementMetrics{1200, {{0.001, 1000}, {0.002, 1200}, {kInf, 1200}}};
  TopView view = MakeTopView(&before, now);
  EXPECT_EQ(view.seconds, 2);
  EXPECT_EQ(view.total_per_second, 100);
  EXPECT_EQ(view.increments_per_second, 100);
  ASSERT_TRUE(view.latency);
  EXPECT_EQ(view.latency->requests, 200);
  EXPECT_DOUBLE_EQ(view.latency->p50, 0.001);  // rank 100 of 200: the first bucket's top
  EXPECT_DOUBLE_EQ(view.latency->p99, 0.001 + 0.001 * 0.98);  // rank 198: 98 of 100 into the second
  EXPECT_EQ(view.latency->max_bound, 0.002);
  EXPECT_EQ(view.latency->highest_finite_bound, 0.002);
  EXPECT_EQ(view.shards[0].per_second, 50);
  EXPECT_DOUBLE_EQ(*view.shards[0].share, 140.0 / 300);
  ASSERT_TRUE(view.counters);
  ASSERT_EQ(view.counters->size(), 2u);
  EXPECT_EQ((*view.counters)[0].per_second, 100);
  // "c" was not among the top 2 before: its change is not known.
  EXPECT_EQ((*view.counters)[1].per_second, std::nullopt);
}

TEST(TopViewTest, ACounterNewToACompleteListChangedFromZero) {
  TopSample before = SampleAt(0);
  before.counters = std::vector<core::CounterTotal>{{"a", 50}};
  before.counters_complete = true;
  TopSample now = SampleAt(1);
  now.counters = std::vector<core::CounterTotal>{{"a", 50}, {"new", 8}};
  TopView view = MakeTopView(&before, now);
  ASSERT_TRUE(view.counters);
  EXPECT_EQ((*view.counters)[0].per_second, 0);
  EXPECT_EQ((*view.counters)[1].per_second, 8);
}

TEST(TopViewTest, NoIncrementsInTheIntervalHasARateOfZeroAndNoLatency) {
  TopSample before = SampleAt(0);
  before.metrics = IncrementMetrics{10, {{0.001, 10}, {kInf, 10}}};
  TopSample now = SampleAt(1);
  now.metrics = before.metrics;
  TopView view = MakeTopView(&before, now);
  EXPECT_EQ(view.increments_per_second, 0);
  EXPECT_EQ(view.latency, std::nullopt);
}

TEST(TopViewTest, ARestartedServerCountsFromZero) {
  TopSample before = SampleAt(0);
  before.metrics = IncrementMetrics{5000, {{0.001, 5000}, {kInf, 5000}}};
  TopSample now = SampleAt(1);
  now.metrics = IncrementMetrics{30, {{0.001, 20}, {kInf, 30}}};
  TopView view = MakeTopView(&before, now);
  EXPECT_EQ(view.increments_per_second, 30);
  ASSERT_TRUE(view.latency);
  EXPECT_EQ(view.latency->max_bound, kInf);
  EXPECT_EQ(view.latency->highest_finite_bound, 0.001);
}

TEST(TopViewTest, WithoutMetricsThereIsNoIncrementRateButTheTotalStillChanges) {
  TopSample before = SampleAt(0);
  before.total = 10;
  before.metrics_error = "no /metrics";
  TopSample now = SampleAt(1);
  now.total = 25;
  now.metrics_error = "no /metrics";
  TopView view = MakeTopView(&before, now);
  EXPECT_FALSE(view.has_metrics);
  EXPECT_EQ(view.metrics_error, "no /metrics");
  EXPECT_EQ(view.increments_per_second, std::nullopt);
  EXPECT_EQ(view.latency, std::nullopt);
  EXPECT_EQ(view.total_per_second, 15);
}

TEST(TopViewTest, ADownShardHasNoCountAndTheTotalIsNotKnown) {
  TopSample before = SampleAt(0);
  before.total = 10;
  before.shards = {Shard(0, true, 4), Shard(1, true, 6)};
  TopSample now = SampleAt(1);
  now.total_error = "shard 1 cannot be reached";
  now.shards = {Shard(0, true, 5), Shard(1, false, std::nullopt, "connection refused")};
  TopView view = MakeTopView(&before, now);
  EXPECT_EQ(view.total, std::nullopt);
  EXPECT_EQ(view.total_error, "shard 1 cannot be reached");
  EXPECT_EQ(view.total_per_second, std::nullopt);
  EXPECT_EQ(view.shards_up, 1);
  EXPECT_EQ(view.shards[0].share, 1);
  EXPECT_EQ(view.shards[0].per_second, 1);
  EXPECT_FALSE(view.shards[1].up);
  EXPECT_EQ(view.shards[1].share, std::nullopt);
  EXPECT_EQ(view.shards[1].per_second, std::nullopt);
  EXPECT_EQ(view.shards[1].last_error, "connection refused");
}

TEST(TopViewTest, SharesAreByMagnitudeAndZeroWhenEveryCountIs) {
  TopSample sample = SampleAt(0);
  sample.shards = {Shard(0, true, -30), Shard(1, true, 10)};
  TopView view = MakeTopView(nullptr, sample);
  EXPECT_EQ(view.shards[0].share, 0.75);
  EXPECT_EQ(view.shards[1].share, 0.25);
  sample.shards = {Shard(0, true, 0), Shard(1, true, 0)};
  view = MakeTopView(nullptr, sample);
  EXPECT_EQ(view.shards[0].share, 0);
}

TEST(TopViewTest, ChangesOfExtremeCountsDoNotOverflow) {
  TopSample before = SampleAt(0);
  before.total = std::numeric_limits<int64_t>::min();
  TopSample now = SampleAt(1);
  now.total = std::numeric_limits<int64_t>::max();
  TopView view = MakeTopView(&before, now);
  ASSERT_TRUE(view.total_per_second);
  EXPECT_GT(*view.total_per_second, 1.8e19);
}

TEST(TopViewTest, CountersThatFailedKeepWhy) {
  TopSample sample = SampleAt(0);
  sample.counters_error = "shard 2 timed out";
  TopView view = MakeTopView(nullptr, sample);
  EXPECT_FALSE(view.counters);
  EXPECT_EQ(view.counters_error, "shard 2 timed out");
}

}  // namespace
}  // namespace shardctl::cmd
