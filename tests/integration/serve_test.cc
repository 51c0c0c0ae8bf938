// `shardctl serve` as a process: readiness, ports in use, clean stops, and
// the pieces run as separate processes (--role shard / --role aggregator).
#include <signal.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

TEST(ServeTest, PrintsOneReadyLinePerListener) {
  ServerProcess serve({"serve", "--port", "0", "--shard-base-port", "0", "--shards", "2"});
  auto listeners = serve.WaitForListeners(3);
  ASSERT_EQ(listeners.size(), 3u) << serve.Stderr();
  EXPECT_TRUE(listeners["shard 0"].starts_with("127.0.0.1:"));
  EXPECT_TRUE(listeners["shard 1"].starts_with("127.0.0.1:"));
  EXPECT_TRUE(listeners["aggregator"].starts_with("127.0.0.1:"));
}

TEST(ServeTest, AggregatorPortInUseIsAClearErrorAndNothingKeepsRunning) {
  HeldPort taken;
  ServerProcess serve({"serve", "--port", std::to_string(taken.port()), "--shard-base-port", "0"});
  EXPECT_EQ(serve.WaitForExit(10s), 5);
  EXPECT_NE(serve.Stderr().find("127.0.0.1:" + std::to_string(taken.port())), std::string::npos)
      << serve.Stderr();
  EXPECT_NE(serve.Stderr().find("already in use"), std::string::npos) << serve.Stderr();
}

TEST(ServeTest, ShardPortInUseIsAClearError) {
  HeldPort taken;
  ServerProcess serve(
      {"serve", "--port", "0", "--shards", "1", "--shard-base-port", std::to_string(taken.port())});
  EXPECT_EQ(serve.WaitForExit(10s), 5);
  EXPECT_NE(serve.Stderr().find(std::to_string(taken.port())), std::string::npos) << serve.Stderr();
}

// Debian's cpp-httplib sets SO_REUSEPORT by default; a second shardctl on the
// same port must fail rather than silently share it.
TEST(ServeTest, SecondServerOnTheSamePortIsRefused) {
  ServerProcess first({"serve", "--role", "shard", "--shard-id", "0", "--port", "0"});
  auto listeners = first.WaitForListeners(1);
  ASSERT_EQ(listeners.size(), 1u) << first.Stderr();
  std::string port = listeners["shard 0"].substr(listeners["shard 0"].rfind(':') + 1);
  ServerProcess second({"serve", "--role", "shard", "--shard-id", "0", "--port", port});
  EXPECT_EQ(second.WaitForExit(10s), 5) << second.Stderr();
  EXPECT_NE(second.Stderr().find("already in use"), std::string::npos) << second.Stderr();
}

TEST(ServeTest, SigtermStopsWithinASecondDespiteIdleKeepAliveClients) {
  Cluster cluster;
  ASSERT_TRUE(cluster.ready());
  HttpConnection idle(cluster.aggregator());
  ASSERT_EQ(idle.Get("/total").status, 200);  // the connection stays open, idle
  HttpConnection idle_shard(cluster.shard(0));
  ASSERT_EQ(idle_shard.Get("/count").status, 200);

  auto start = std::chrono::steady_clock::now();
  cluster.process().Signal(SIGTERM);
  EXPECT_EQ(cluster.process().WaitForExit(3s), 0) << cluster.process().Stderr();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(ServeTest, SigintStopsCleanly) {
  Cluster cluster;
  ASSERT_TRUE(cluster.ready());
  cluster.process().Signal(SIGINT);
  EXPECT_EQ(cluster.process().WaitForExit(3s), 0);
}

TEST(ServeTest, BadOptionCombinationsAreUsageErrors) {
  const std::vector<std::vector<std::string>> bad = {
      {"serve", "--role", "shard"},                                      // no --shard-id
      {"serve", "--role", "shard", "--shard-id", "3", "--shards", "3"},  // id out of range
      {"serve", "--role", "aggregator"},                                 // no --shard
      {"serve", "--role", "aggregator", "--shards", "2", "--shard", "http://127.0.0.1:1"},
      {"serve", "--role", "aggregator", "--shard", "ftp://x:1"},
      {"serve", "--role", "nonsense"},
      {"serve", "--shards", "0"},
      {"serve", "--port", "70000"},
      {"serve", "--port", "010"},     // not octal 8
      {"serve", "--port", "0x3a99"},  // not hex
      {"serve", "--shard-id", "1"},
  };
  for (const auto& args : bad) {
    RunResult result = RunShardctl(args);
    EXPECT_EQ(result.exit_code, 2) << args.back() << "\n" << result.err;
    EXPECT_TRUE(result.err.starts_with("shardctl: error: ")) << result.err;
  }
}

// Shards and aggregator as separate processes, as on separate hosts.
class SeparateRolesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> aggregator_args = {"serve", "--role", "aggregator", "--port", "0"};
    for (int id = 0; id < 3; ++id) {
      shards_.push_back(std::make_unique<ServerProcess>(
          std::vector<std::string>{"serve", "--role", "shard", "--shard-id", std::to_string(id),
                                   "--shards", "3", "--port", "0"}));
      auto listeners = shards_.back()->WaitForListeners(1);
      ASSERT_EQ(listeners.size(), 1u) << shards_.back()->Stderr();
      shard_addresses_.push_back(listeners["shard " + std::to_string(id)]);
      aggregator_args.push_back("--shard");
      aggregator_args.push_back("http://" + shard_addresses_.back());
    }
    aggregator_ = std::make_unique<ServerProcess>(aggregator_args);
    auto listeners = aggregator_->WaitForListeners(1);
    ASSERT_EQ(listeners.size(), 1u) << aggregator_->Stderr();
    url_ = "http://" + listeners["aggregator"];
  }

  std::vector<std::unique_ptr<ServerProcess>> shards_;
  std::vector<std::string> shard_addresses_;
  std::unique_ptr<ServerProcess> aggregator_;
  std::string url_;
};

TEST_F(SeparateRolesTest, IncAndTotalGoThroughEveryShard) {
  for (int value : {1, 2, 3, 4, -6}) {
    EXPECT_EQ(RunShardctl({"inc", std::to_string(value), "--url", url_}).exit_code, 0);
  }
  RunResult total = RunShardctl({"total", "--url", url_});
  EXPECT_EQ(total.exit_code, 0) << total.err;
  EXPECT_EQ(total.out, "4\n");
  HttpConnection shard0(shard_addresses_[0]);
  EXPECT_EQ(shard0.Get("/count").body, R"({"shardId":0,"count":-3})");  // 3 - 6
  HttpConnection shard1(shard_addresses_[1]);
  EXPECT_EQ(shard1.Get("/count").body, R"({"shardId":1,"count":5})");  // 1 + 4
}

TEST_F(SeparateRolesTest, ShardDownGives503NamingItAndOtherShardsStillCount) {
  ASSERT_EQ(RunShardctl({"inc", "3", "--url", url_}).exit_code, 0);
  shards_[1]->Signal(SIGKILL);
  ASSERT_TRUE(shards_[1]->WaitForExit(5s).has_value());

  HttpConnection http(url_.substr(7));
  Reply total = http.Get("/total");
  EXPECT_EQ(total.status, 503);
  EXPECT_NE(total.body.find("shard 1"), std::string::npos) << total.body;
  EXPECT_NE(total.body.find(shard_addresses_[1]), std::string::npos) << total.body;

  Reply lost = http.Post("/increment", R"({"value":4})");  // shard 1
  EXPECT_EQ(lost.status, 503);
  EXPECT_NE(lost.body.find(shard_addresses_[1]), std::string::npos) << lost.body;

  EXPECT_EQ(http.Post("/increment", R"({"value":6})").status, 200);  // shard 0
  RunResult cli_total = RunShardctl({"total", "--url", url_});
  EXPECT_EQ(cli_total.exit_code, 4);
  EXPECT_NE(cli_total.err.find("shard 1"), std::string::npos) << cli_total.err;
  HttpConnection shard0(shard_addresses_[0]);
  EXPECT_EQ(shard0.Get("/count").body, R"({"shardId":0,"count":9})");
}

TEST_F(SeparateRolesTest, NamedCountersListingAndResetWorkAcrossProcesses) {
  HttpConnection http(url_.substr(7));
  for (int value : {1, 2, 3}) {
    ASSERT_EQ(
        http.Post("/increment", "{\"value\":" + std::to_string(value) + ",\"counter\":\"views\"}")
            .status,
        200);
  }
  http.Post("/increment", R"({"value":10,"counter":"clicks","window":60})");
  EXPECT_EQ(http.Get("/total?counter=views").body, R"({"total":6,"counter":"views"})");
  EXPECT_TRUE(http.Get("/total?counter=clicks&window=60").body.starts_with(R"({"total":10,)"));
  EXPECT_EQ(http.Get("/counters?top=5").body, R"({"counters":[{"counter":"views","total":6}]})");
  EXPECT_EQ(http.Post("/reset", R"({"counter":"views"})").body,
            R"({"counter":"views","removed":6})");
  EXPECT_EQ(http.Get("/counters").body, R"({"counters":[]})");
}

// The leaderboard's sorted and random access, and pages, over HTTP: every
// answer is checked against totals the test keeps itself.
TEST_F(SeparateRolesTest, LeaderboardsAndPagesAreExactAcrossProcesses) {
  std::map<std::string, int64_t> totals = IncrementSpreadCounters(url_.substr(7), 240);
  ExpectExactLeaderboardsAndPages(url_.substr(7), totals);
  // A shard's own sorted access and random access.
  HttpConnection shard0(shard_addresses_[0]);
  Reply rank = shard0.Get("/counters?order=count&limit=2");
  EXPECT_EQ(rank.status, 200);
  EXPECT_TRUE(rank.body.starts_with(R"({"shardId":0,"counters":[{"counter":"lb:)")) << rank.body;
  Reply counts = shard0.Post("/counts", R"({"counters":["nothing","lb:000"]})");
  EXPECT_EQ(counts.status, 200);
  EXPECT_TRUE(counts.body.starts_with(R"({"shardId":0,"counts":[0,)")) << counts.body;
  EXPECT_EQ(shard0.Get("/counters?order=count").status, 400);
}

// Batches of many counters split over shard processes (each share sent to
// its shard's POST /increment-many), as JSON and as inc --stdin's lines.
TEST_F(SeparateRolesTest, BatchesOfManyCountersAreExactAcrossProcesses) {
  std::map<std::string, int64_t> totals = IncrementSpreadCountersInBatches(url_.substr(7), 240);
  ExpectExactLeaderboardsAndPages(url_.substr(7), totals);
}

TEST_F(SeparateRolesTest, ShardRefusalPassesThroughTheAggregator) {
  HttpConnection http(url_.substr(7));
  ASSERT_EQ(http.Post("/increment", R"({"value":9223372036854775807})").status, 200);
  Reply overflow = http.Post("/increment", R"({"value":1})");
  EXPECT_EQ(overflow.status, 422) << overflow.body;
  EXPECT_EQ(RunShardctl({"total", "--url", url_}).out, "9223372036854775807\n");
}

}  // namespace
}  // namespace shardctl::testing
