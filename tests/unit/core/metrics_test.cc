#include "core/metrics.h"

#include <string>

#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

TEST(MetricsTest, RendersEachFamilyOnceWithHelpAndTypeInDeclarationOrder) {
  Registry registry;
  Counter& get = registry.AddCounter("x_requests_total", "Requests.", {{"route", "/get"}});
  Counter& put = registry.AddCounter("x_requests_total", "Requests.", {{"route", "/put"}});
  registry.Declare("x_open", Registry::Type::kGauge, "Open things.");
  registry.AddCollector([](MetricSink& sink) { sink.Sample("x_open", {}, 3); });
  registry.AddCollector([](MetricSink& sink) { sink.Sample("x_undeclared", {}, 1); });
  get.Add();
  get.Add(2);
  put.Add();
  EXPECT_EQ(registry.Render(),
            "# HELP x_requests_total Requests.\n"
            "# TYPE x_requests_total counter\n"
            "x_requests_total{route=\"/get\"} 3\n"
            "x_requests_total{route=\"/put\"} 1\n"
            "# HELP x_open Open things.\n"
            "# TYPE x_open gauge\n"
            "x_open 3\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndInclusiveOfTheirBound) {
  Registry registry;
  Histogram& latency = registry.AddHistogram("x_seconds", "Latency.", {0.001, 0.01}, {{"r", "a"}});
  latency.Observe(0.0005);
  latency.Observe(0.001);  // le="0.001" holds it: bounds are inclusive
  latency.Observe(0.005);
  latency.Observe(2.5);
  EXPECT_EQ(registry.Render(),
            "# HELP x_seconds Latency.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{r=\"a\",le=\"0.001\"} 2\n"
            "x_seconds_bucket{r=\"a\",le=\"0.01\"} 3\n"
            "x_seconds_bucket{r=\"a\",le=\"+Inf\"} 4\n"
            "x_seconds_sum{r=\"a\"} 2.5065\n"
            "x_seconds_count{r=\"a\"} 4\n");
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  Registry registry;
  registry.Declare("x", Registry::Type::kGauge, "X.");
  registry.AddCollector([](MetricSink& sink) { sink.Sample("x", {{"name", "q\""}}, 0.25); });
  EXPECT_NE(registry.Render().find("x{name=\"q\\\"\"} 0.25\n"), std::string::npos);
}

TEST(MetricsTest, BucketsAscend) {
  for (const auto& bounds : {LatencyBuckets(), DiskBuckets()}) {
    ASSERT_FALSE(bounds.empty());
    for (size_t i = 1; i < bounds.size(); ++i) EXPECT_LT(bounds[i - 1], bounds[i]);
  }
  EXPECT_DOUBLE_EQ(DiskBuckets().back(), 8.192);
}

}  // namespace
}  // namespace shardctl::core
