#include "cmd/bench_report.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace shardctl::cmd {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

BenchResult TwoSecondsOfIncrements() {
  BenchResult result;
  result.op = "inc";
  result.connections = 4;
  result.requests = 1003;
  result.ok = 1000;
  result.increments = 1000;
  result.sum = 30500;
  result.errors["http503"] = {2, "shard 1 is down"};
  result.errors["connection"] = {1, "cannot connect"};
  result.elapsed = milliseconds(2000);
  for (int i = 1; i <= 1000; ++i) result.latency.Record(microseconds(i));
  return result;
}

TEST(PerSecondTest, CountOverElapsedSeconds) {
  EXPECT_DOUBLE_EQ(PerSecond(1000, milliseconds(2000)), 500);
  EXPECT_DOUBLE_EQ(PerSecond(1, milliseconds(250)), 4);
  EXPECT_DOUBLE_EQ(PerSecond(1000, milliseconds(0)), 0);  // no division by zero
}

TEST(BenchResultTest, MergeAddsCountsAndKeepsTheFirstMessage) {
  BenchResult total, a, b;
  a.requests = 3;
  a.ok = 2;
  a.errors["http400"] = {1, "first"};
  a.latency.Record(microseconds(5));
  b.requests = 2;
  b.ok = 1;
  b.errors["http400"] = {1, "second"};
  b.latency.Record(microseconds(7));
  total.Merge(a);
  total.Merge(b);
  EXPECT_EQ(total.requests, 5);
  EXPECT_EQ(total.ok, 3);
  EXPECT_EQ(total.error_count(), 2);
  EXPECT_EQ(total.errors["http400"].count, 2);
  EXPECT_EQ(total.errors["http400"].first_message, "first");
  EXPECT_EQ(total.latency.count(), 2);
}

TEST(BenchReportTest, JsonHasEveryFieldInOrder) {
  nlohmann::ordered_json json = nlohmann::ordered_json::parse(FormatBenchJson(TwoSecondsOfIncrements()));
  std::vector<std::string> keys;
  for (const auto& item : json.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "op", "connections", "batch", "requests", "ok", "errors", "errorsByKind",
                      "increments", "sum", "seconds", "requestsPerSecond", "incrementsPerSecond",
                      "latencyMs", "interrupted"}));
  EXPECT_EQ(json["op"], "inc");
  EXPECT_EQ(json["requests"], 1003);
  EXPECT_EQ(json["errors"], 3);
  EXPECT_EQ(json["errorsByKind"], (nlohmann::ordered_json{{"connection", 1}, {"http503", 2}}));
  EXPECT_EQ(json["sum"], 30500);
  EXPECT_EQ(json["seconds"], 2.0);
  EXPECT_EQ(json["requestsPerSecond"], 500.0);
  EXPECT_EQ(json["incrementsPerSecond"], 500.0);
  EXPECT_NEAR(json["latencyMs"]["p50"].get<double>(), 0.5, 0.005);
  EXPECT_NEAR(json["latencyMs"]["p999"].get<double>(), 0.999, 0.008);
  EXPECT_EQ(json["latencyMs"]["max"], 1.0);
  EXPECT_EQ(json["interrupted"], false);
}

TEST(BenchReportTest, JsonLatenciesAreNullWhenNothingSucceeded) {
  BenchResult result;
  result.op = "total";
  result.requests = 5;
  result.errors["connection"] = {5, "cannot connect"};
  result.elapsed = milliseconds(10);
  nlohmann::json json = nlohmann::json::parse(FormatBenchJson(result));
  EXPECT_TRUE(json["latencyMs"]["p50"].is_null());
  EXPECT_TRUE(json["latencyMs"]["max"].is_null());
  EXPECT_EQ(json["requestsPerSecond"], 0.0);
}

TEST(BenchReportTest, JsonRoundsToReadableNumbers) {
  BenchResult result;
  result.op = "total";
  result.requests = result.ok = 1;
  result.elapsed = milliseconds(3);  // 333.333... requests/s
  std::string json = FormatBenchJson(result);
  EXPECT_NE(json.find(R"("seconds":0.003,)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("requestsPerSecond":333.3,)"), std::string::npos) << json;
}

TEST(BenchReportTest, TableShowsThroughputLatencyAndErrors) {
  std::string table = FormatBenchTable(TwoSecondsOfIncrements());
  EXPECT_NE(table.find("requests      1003 (1000 ok, 3 errors)\n"), std::string::npos) << table;
  EXPECT_NE(table.find("elapsed       2.000 s\n"), std::string::npos) << table;
  EXPECT_NE(table.find("requests/s    500\n"), std::string::npos) << table;
  EXPECT_NE(table.find("increments/s  500\n"), std::string::npos) << table;
  EXPECT_NE(table.find("added         30500 "), std::string::npos) << table;
  EXPECT_NE(table.find("latency       p50 0.50"), std::string::npos) << table;
  EXPECT_NE(table.find("max 1.000 ms\n"), std::string::npos) << table;
  EXPECT_NE(table.find("errors        1 connection: cannot connect\n"), std::string::npos) << table;
  EXPECT_NE(table.find("              2 HTTP 503: shard 1 is down\n"), std::string::npos) << table;
}

TEST(BenchReportTest, TableOfTotalHasNoIncrements) {
  BenchResult result;
  result.op = "total";
  std::string table = FormatBenchTable(result);
  EXPECT_NE(table.find("GET /total"), std::string::npos) << table;
  EXPECT_EQ(table.find("increments/s"), std::string::npos) << table;
  EXPECT_NE(table.find("latency       - "), std::string::npos) << table;
}

TEST(BenchReportTest, ProgressByRequestsOrBySeconds) {
  EXPECT_EQ(FormatProgress(50, 100, 1.0, 0, 1234.4),
            "[##########----------]        50/100 requests  1234 req/s");
  EXPECT_EQ(FormatProgress(300, 0, 2.5, 10, 120),
            "[#####---------------]    2.5/10.0 s       300 requests  120 req/s");
  EXPECT_EQ(FormatProgress(500, 100, 1.0, 0, 0).substr(0, 22), "[####################]");
}

}  // namespace
}  // namespace shardctl::cmd
