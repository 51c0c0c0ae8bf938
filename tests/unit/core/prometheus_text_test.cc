#include "core/prometheus_text.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

TEST(PrometheusTextTest, ReadsSamplesAndSkipsCommentsAndBlankLines) {
  const std::string text =
      "# HELP shardctl_http_requests_total Requests answered.\n"
      "# TYPE shardctl_http_requests_total counter\n"
      "shardctl_http_requests_total{listener=\"aggregator\",route=\"/increment\",code=\"200\"} 42\n"
      "\n"
      "# TYPE shardctl_http_request_duration_seconds histogram\n"
      "shardctl_http_request_duration_seconds_bucket{listener=\"aggregator\",le=\"0.0001\"} 3\n"
      "shardctl_http_request_duration_seconds_bucket{listener=\"aggregator\",le=\"+Inf\"} 7\n"
      "shardctl_http_request_duration_seconds_sum{listener=\"aggregator\"} 0.0125\n"
      "process_open_fds 12\n";
  Result<std::vector<MetricSample>> samples = ParsePrometheusText(text);
  ASSERT_TRUE(samples.ok()) << samples.status().message();
  ASSERT_EQ(samples->size(), 5u);
  const MetricSample& requests = (*samples)[0];
  EXPECT_EQ(requests.name, "shardctl_http_requests_total");
  EXPECT_EQ(requests.labels,
            (Labels{{"listener", "aggregator"}, {"route", "/increment"}, {"code", "200"}}));
  EXPECT_EQ(requests.value, 42);
  EXPECT_EQ(requests.Label("route"), "/increment");
  EXPECT_EQ(requests.Label("le"), std::nullopt);
  EXPECT_EQ((*samples)[2].Label("le"), "+Inf");
  EXPECT_EQ((*samples)[3].value, 0.0125);
  EXPECT_EQ((*samples)[4].name, "process_open_fds");
  EXPECT_TRUE((*samples)[4].labels.empty());
  EXPECT_EQ((*samples)[4].value, 12);
}

TEST(PrometheusTextTest, ReadsEveryFormOfALine) {
  struct Case {
    std::string line;
    std::string name;
    Labels labels;
    double value;
  };
  const double inf = std::numeric_limits<double>::infinity();
  for (const Case& c : std::vector<Case>{
           {"a 1", "a", {}, 1},
           {"a{} 1", "a", {}, 1},
           {"a:b_c9 -2.5", "a:b_c9", {}, -2.5},
           {"a 1e3", "a", {}, 1000},
           {"a +Inf", "a", {}, inf},
           {"a -Inf", "a", {}, -inf},
           {"a{x=\"1\",} 1", "a", {{"x", "1"}}, 1},                          // a trailing comma
           {"a { x = \"1\" , y=\"\" } 1", "a", {{"x", "1"}, {"y", ""}}, 1},  // blanks
           {"a{x=\"q\\\"b\\\\n\\n\"} 1", "a", {{"x", "q\"b\\n\n"}}, 1},      // escapes
           {"a{x=\"a b,c}\"} 1", "a", {{"x", "a b,c}"}}, 1},                 // anything in quotes
           {"a 1 1700000000000", "a", {}, 1},                                // a timestamp, dropped
           {"a\t1\t-5", "a", {}, 1},  // tabs; a negative timestamp
           {"  a 1  ", "a", {}, 1},
           {"a 1\r", "a", {}, 1},
       }) {
    Result<std::vector<MetricSample>> samples = ParsePrometheusText(c.line + "\n");
    ASSERT_TRUE(samples.ok()) << c.line << ": " << samples.status().message();
    ASSERT_EQ(samples->size(), 1u) << c.line;
    EXPECT_EQ((*samples)[0].name, c.name) << c.line;
    EXPECT_EQ((*samples)[0].labels, c.labels) << c.line;
    EXPECT_EQ((*samples)[0].value, c.value) << c.line;
  }
}

TEST(PrometheusTextTest, ReadsNaN) {
  Result<std::vector<MetricSample>> samples = ParsePrometheusText("a NaN");
  ASSERT_TRUE(samples.ok());
  EXPECT_TRUE(std::isnan((*samples)[0].value));
}

TEST(PrometheusTextTest, EmptyTextHasNoSamples) {
  for (const std::string text : {"", "\n\n", "# just a comment\n", "#\n"}) {
    Result<std::vector<MetricSample>> samples = ParsePrometheusText(text);
    ASSERT_TRUE(samples.ok()) << text;
    EXPECT_TRUE(samples->empty()) << text;
  }
}

TEST(PrometheusTextTest, RefusesWhatIsNotASampleNamingTheLine) {
  for (const std::string bad : {
           "1a 1",                 // a name cannot start with a digit
           "{x=\"1\"} 1",          // no name
           "a",                    // no value
           "a{} ",                 // no value
           "a one",                // not a number
           "a 1 2 3",              // more than a timestamp
           "a 1 1.5",              // a timestamp is an integer
           "a{x=1} 1",             // an unquoted label value
           "a{x=\"1\" 1",          // no closing brace
           "a{x=\"1} 1",           // no closing quote
           "a{x} 1",               // no '='
           "a{9x=\"1\"} 1",        // a label name cannot start with a digit
           "a{x:y=\"1\"} 1",       // nor hold a colon
           "a{x=\"\\t\"} 1",       // an unknown escape
           "a{x=\"1\"y=\"2\"} 1",  // no comma between labels
           "a ++1",
           "a 0x",
       }) {
    Result<std::vector<MetricSample>> samples = ParsePrometheusText("ok 1\n" + bad + "\nok 2\n");
    ASSERT_FALSE(samples.ok()) << bad;
    EXPECT_EQ(samples.status().code(), Code::kBadGateway) << bad;
    EXPECT_NE(samples.status().message().find("line 2 "), std::string::npos)
        << bad << ": " << samples.status().message();
  }
}

TEST(PrometheusTextTest, ErrorCutsALongLine) {
  Result<std::vector<MetricSample>> samples = ParsePrometheusText("a " + std::string(500, 'x'));
  ASSERT_FALSE(samples.ok());
  EXPECT_LT(samples.status().message().size(), 250u);
}

}  // namespace
}  // namespace shardctl::core
