#include "cmd/latency_histogram.h"

#include <chrono>
#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

namespace shardctl::cmd {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;

// Within the histogram's resolution: at most 1/128 above `exact`, never below.
void ExpectNear(nanoseconds actual, nanoseconds exact) {
  EXPECT_GE(actual.count(), exact.count());
  EXPECT_LE(actual.count(), exact.count() + exact.count() / 128) << "exact " << exact.count();
}

TEST(LatencyHistogramTest, EmptyHasZeroPercentilesAndMax) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.count(), 0);
  EXPECT_EQ(histogram.Percentile(50), nanoseconds(0));
  EXPECT_EQ(histogram.Percentile(99.9), nanoseconds(0));
  EXPECT_EQ(histogram.max(), nanoseconds(0));
}

TEST(LatencyHistogramTest, OneSampleIsEveryPercentileExactly) {
  LatencyHistogram histogram;
  histogram.Record(microseconds(1234));
  EXPECT_EQ(histogram.count(), 1);
  for (double percent : {0.1, 50.0, 99.0, 99.9, 100.0}) {
    EXPECT_EQ(histogram.Percentile(percent), microseconds(1234)) << percent;
  }
  EXPECT_EQ(histogram.max(), microseconds(1234));
}

TEST(LatencyHistogramTest, SmallLatenciesAreExactByNearestRank) {
  LatencyHistogram histogram;
  for (int nanos : {4, 1, 3, 2}) histogram.Record(nanoseconds(nanos));
  EXPECT_EQ(histogram.Percentile(25), nanoseconds(1));
  EXPECT_EQ(histogram.Percentile(50), nanoseconds(2));  // 2 of 4 do not exceed 2
  EXPECT_EQ(histogram.Percentile(50.1), nanoseconds(3));
  EXPECT_EQ(histogram.Percentile(100), nanoseconds(4));
}

TEST(LatencyHistogramTest, P999Of1000IsThe999thSmallest) {
  LatencyHistogram histogram;
  for (int i = 1000; i >= 1; --i) histogram.Record(microseconds(i));  // 1 ms, ..., 1 us
  EXPECT_EQ(histogram.count(), 1000);
  ExpectNear(histogram.Percentile(50), microseconds(500));
  ExpectNear(histogram.Percentile(99), microseconds(990));
  ExpectNear(histogram.Percentile(99.9), microseconds(999));
  EXPECT_EQ(histogram.Percentile(100), microseconds(1000));  // never above max
  EXPECT_EQ(histogram.max(), microseconds(1000));
}

TEST(LatencyHistogramTest, OneOutlierIn1000ShowsOnlyInMax) {
  LatencyHistogram histogram;
  for (int i = 0; i < 999; ++i) histogram.Record(microseconds(100));
  histogram.Record(std::chrono::seconds(2));
  ExpectNear(histogram.Percentile(99.9), microseconds(100));
  EXPECT_EQ(histogram.max(), std::chrono::seconds(2));
}

TEST(LatencyHistogramTest, EveryRangeStaysWithinOnePercent) {
  for (int64_t exact : {int64_t{255}, int64_t{256}, int64_t{257}, int64_t{1'000'003},
                        int64_t{123'456'789'012}, std::numeric_limits<int64_t>::max() / 3}) {
    LatencyHistogram histogram;
    histogram.Record(nanoseconds(exact));
    histogram.Record(nanoseconds(exact * 2));
    ExpectNear(histogram.Percentile(50), nanoseconds(exact));
  }
}

TEST(LatencyHistogramTest, NegativeLatencyCountsAsZero) {
  LatencyHistogram histogram;
  histogram.Record(nanoseconds(-5));
  EXPECT_EQ(histogram.Percentile(50), nanoseconds(0));
}

TEST(LatencyHistogramTest, MergeAddsCountsAndKeepsTheLargerMax) {
  LatencyHistogram a, b;
  for (int i = 1; i <= 50; ++i) a.Record(nanoseconds(i));
  for (int i = 51; i <= 100; ++i) b.Record(nanoseconds(i));
  a.Merge(b);
  EXPECT_EQ(a.count(), 100);
  EXPECT_EQ(a.Percentile(50), nanoseconds(50));
  EXPECT_EQ(a.Percentile(99), nanoseconds(99));
  EXPECT_EQ(a.max(), nanoseconds(100));
}

}  // namespace
}  // namespace shardctl::cmd
