// shardctl bench against a real `shardctl serve --in-memory`: what it adds to
// the total is what it reports, its JSON has the documented fields, -d stops
// on time, and its exit codes. The batch form, which the server does not
// take yet, against a fake server that does.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Json = nlohmann::json;

// 1 + 2 + ... + 60, repeated: the values bench sends (cmd/bench_workload.h).
int64_t ValueSum(int64_t increments) {
  int64_t sum = 0;
  for (int64_t i = 0; i < increments; ++i) sum += 1 + i % 60;
  return sum;
}

Json ParseJsonOutput(const RunResult& result) {
  Json json = Json::parse(result.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(json.is_object()) << "not one JSON object:\n" << result.out;
  return json.is_object() ? json : Json::object();
}

class BenchTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.ready()); }

  RunResult Run(const std::vector<std::string>& args) { return cluster_.Run(args); }
  Json Total(const std::string& query = "") {
    Reply reply = HttpConnection(cluster_.aggregator()).Get("/total" + query);
    EXPECT_EQ(reply.status, 200) << reply.body;
    return Json::parse(reply.body, nullptr, false);
  }

  Cluster cluster_{{"--in-memory"}};
};

TEST_F(BenchTest, IncAddsExactlyTheSumItReports) {
  RunResult result = Run({"bench", "-n", "2000", "-c", "4", "--op", "inc", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  Json json = ParseJsonOutput(result);
  EXPECT_EQ(json["requests"], 2000);
  EXPECT_EQ(json["ok"], 2000);
  EXPECT_EQ(json["errors"], 0);
  EXPECT_EQ(json["increments"], 2000);
  EXPECT_EQ(json["sum"], ValueSum(2000));
  EXPECT_EQ(Total()["total"], ValueSum(2000));
  // Values 1..60 spread the increments over the 3 shards evenly.
  const Json per_shard = Total("?perShard=true");  // kept: the loop walks into it
  for (const Json& shard : per_shard["shards"]) {
    EXPECT_GT(shard["count"].get<int64_t>(), ValueSum(2000) / 4) << shard;
  }
}

TEST_F(BenchTest, JsonHasTheDocumentedFields) {
  RunResult result = Run({"bench", "-n", "200", "-c", "2", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  Json json = ParseJsonOutput(result);
  EXPECT_EQ(json["op"], "inc");
  EXPECT_EQ(json["connections"], 2);
  EXPECT_EQ(json["batch"], 1);
  EXPECT_TRUE(json["errorsByKind"].is_object());
  EXPECT_GT(json["seconds"].get<double>(), 0);
  EXPECT_GT(json["requestsPerSecond"].get<double>(), 0);
  EXPECT_EQ(json["requestsPerSecond"], json["incrementsPerSecond"]);
  const Json& latency = json["latencyMs"];
  for (const char* field : {"p50", "p99", "p999", "max"}) {
    ASSERT_TRUE(latency[field].is_number()) << field << " in " << json;
  }
  EXPECT_LE(latency["p50"].get<double>(), latency["p99"].get<double>());
  EXPECT_LE(latency["p99"].get<double>(), latency["p999"].get<double>());
  EXPECT_LE(latency["p999"].get<double>(), latency["max"].get<double>());
  EXPECT_EQ(json["interrupted"], false);
}

TEST_F(BenchTest, PrintsATableByDefaultAndNoProgressWhenNotOnATerminal) {
  RunResult result = Run({"bench", "-n", "300", "-c", "3", "-k", "pageviews"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_NE(result.out.find("requests      300 (300 ok, 0 errors)\n"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("requests/s    "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("latency       p50 "), std::string::npos) << result.out;
  EXPECT_EQ(Total("?counter=pageviews")["total"], ValueSum(300));
  EXPECT_EQ(Total()["total"], 0);
}

TEST_F(BenchTest, OpTotalReadsAndAddsNothing) {
  RunResult result = Run({"bench", "-n", "300", "-c", "2", "--op", "total", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  Json json = ParseJsonOutput(result);
  EXPECT_EQ(json["op"], "total");
  EXPECT_EQ(json["ok"], 300);
  EXPECT_EQ(json["increments"], 0);
  EXPECT_EQ(json["incrementsPerSecond"], 0.0);
  EXPECT_EQ(Total()["total"], 0);
}

TEST_F(BenchTest, DurationStopsAfterAboutASecond) {
  auto start = std::chrono::steady_clock::now();
  RunResult result = Run({"bench", "-d", "1", "-c", "2", "--op", "total", "--json"});
  auto wall = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(result.exit_code, 0) << result.err;
  Json json = ParseJsonOutput(result);
  EXPECT_GE(json["seconds"].get<double>(), 1.0);
  EXPECT_LT(json["seconds"].get<double>(), 3.0);
  EXPECT_GT(json["ok"].get<int64_t>(), 0);
  EXPECT_LT(wall, std::chrono::seconds(5));
}

TEST_F(BenchTest, ProgressOnATerminal) {
  RunResult result = RunCommandOnTerminal(std::string(SHARDCTL_BINARY) + " bench -d 1 -c 2 --url " +
                                              cluster_.url(),
                                          {});
  EXPECT_EQ(result.exit_code, 0) << result.out;
  EXPECT_NE(result.out.find("\r["), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(" req/s"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("requests/s"), std::string::npos) << result.out;  // the table
}

// The server takes no batch yet: it refuses {"values":[...]} with 400, and
// bench says so and stops instead of sending every request to be refused.
TEST_F(BenchTest, BatchesAgainstTheRealServerAddExactlyWhatTheyReport) {
  RunResult result = Run({"bench", "--batch", "10", "-n", "100", "-c", "2", "--json"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  Json json = ParseJsonOutput(result);
  EXPECT_EQ(json["ok"], 100);
  EXPECT_EQ(json["increments"], 1000);
  EXPECT_EQ(Total()["total"], json["sum"]);
}

// A stand-in for the server with batch increments: it sums the values it is
// sent and answers 200.
class FakeBatchServer {
 public:
  FakeBatchServer() {
    server_.set_tcp_nodelay(true);
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    server_.Post("/increment", [this](const httplib::Request& req, httplib::Response& res) {
      Json body = Json::parse(req.body, nullptr, false);
      if (!body.is_object() || !body["values"].is_array()) {
        res.status = 400;
        res.set_content(R"({"error":"not a batch"})", "application/json");
        return;
      }
      for (const Json& value : body["values"]) sum_ += value.get<int64_t>();
      increments_ += static_cast<int64_t>(body["values"].size());
      requests_ += 1;
      res.set_content(R"({"success":true})", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeBatchServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::atomic<int64_t> requests_{0}, increments_{0}, sum_{0};

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(BenchBatchTest, SendsNValuesPerRequestAndCountsIncrements) {
  FakeBatchServer server;
  RunResult result = RunShardctl(
      {"bench", "-n", "100", "-c", "2", "--batch", "10", "--json", "--url", server.url()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  Json json = ParseJsonOutput(result);
  EXPECT_EQ(json["requests"], 100);
  EXPECT_EQ(json["batch"], 10);
  EXPECT_EQ(json["increments"], 1000);
  EXPECT_EQ(json["sum"], ValueSum(1000));
  EXPECT_NEAR(json["incrementsPerSecond"].get<double>(),
              10 * json["requestsPerSecond"].get<double>(), 1.0);
  EXPECT_EQ(server.requests_, 100);
  EXPECT_EQ(server.increments_, 1000);
  EXPECT_EQ(server.sum_, ValueSum(1000));
}

TEST(BenchNoServerTest, UnreachableServerExits3) {
  int port = 0;
  {
    HeldPort free_port;  // released at once: nothing listens there afterwards
    port = free_port.port();
  }
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  RunResult result = RunShardctl({"bench", "-n", "10", "--url", url});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(result.err.find("cannot connect to " + url), std::string::npos) << result.err;
  EXPECT_EQ(result.out, "");
}

TEST(BenchNoServerTest, UsageErrorsExit2) {
  const std::vector<std::vector<std::string>> bad = {
      {"bench", "-n", "10", "-d", "1"},
      {"bench", "-c", "0"},
      {"bench", "-c", "010"},
      {"bench", "-n", "0"},
      {"bench", "-n", "1e3"},
      {"bench", "-d", "-1"},
      {"bench", "--op", "reset"},
      {"bench", "--batch", "0"},
      {"bench", "--batch", "2", "--op", "total"},
      {"bench", "--counter", "no spaces"},
      {"bench", "--url", "ftp://127.0.0.1:4000"},
  };
  for (const auto& args : bad) {
    // Nothing listens on port 1: a usage error must come before any request.
    std::vector<std::string> with_url = args;
    if (args[1] != "--url") with_url.insert(with_url.end(), {"--url", "http://127.0.0.1:1"});
    RunResult result = RunShardctl(with_url);
    EXPECT_EQ(result.exit_code, 2) << args[1] << " " << args[2] << "\n" << result.err;
    EXPECT_TRUE(result.err.starts_with("shardctl: error: ")) << result.err;
  }
}

}  // namespace
}  // namespace shardctl::testing
