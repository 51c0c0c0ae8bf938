// A cluster kept in a real etcd: `shardctl cluster init`, nodes that join
// with `serve --etcd` (each on its own loopback address), an aggregator that
// follows the topology, and moves, rebalances and drains under load, checked
// as Jepsen's counter test checks: acknowledged <= total <= acknowledged +
// unknown.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/etcd_harness.h"
#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

class ClusterTest : public EtcdClusterTest {
 protected:
  Json Status() {
    RunResult status = Shardctl({"cluster", "status", "--json"});
    Json json = Json::parse(status.out, nullptr, false);
    EXPECT_FALSE(json.is_discarded()) << status.out << status.err;
    json["exitCode"] = status.exit_code;
    return json;
  }

  // Each live node's shards, by node id.
  std::map<std::string, size_t> Loads() {
    std::map<std::string, size_t> loads;
    const Json status = Status();
    for (const Json& node : status["nodes"]) {
      if (node["alive"].get<bool>()) loads[node["id"]] = node["shards"].size();
    }
    return loads;
  }

  // A cluster of 3 shards on two nodes, balanced, with an aggregator.
  void StartTwoNodesAndAnAggregator() {
    Init(3);
    StartNode(1);
    StartNode(2);
    StartAggregator();
    ASSERT_EQ(Shardctl({"cluster", "rebalance"}).exit_code, 0);
    ASSERT_EQ(Loads().size(), 2u);
  }

  int64_t Total() {
    Reply reply = HttpConnection(aggregator_address_).Get("/total");
    EXPECT_EQ(reply.status, 200) << reply.body;
    Json json = Json::parse(reply.body, nullptr, false);
    return json.is_object() ? json.value("total", int64_t{-1}) : -1;
  }
};

// Increments through the aggregator from several connections until stopped,
// recording each as acknowledged or unknown (no answer, or a 5xx).
class Load {
 public:
  Load(const std::string& address, int connections) {
    for (int c = 0; c < connections; ++c) {
      threads_.emplace_back([this, address, c] {
        auto http = std::make_unique<HttpConnection>(address);
        for (int64_t i = 0; !stop_.load(); ++i) {
          int64_t value = 1 + (c * 7 + i) % 50;
          Reply reply = http->Post("/increment", "{\"value\":" + std::to_string(value) + "}");
          if (reply.status == 200) {
            acknowledged_ += value;
            ++requests_;
          } else if (reply.status == 0 || reply.status >= 500) {
            unknown_ += value;
            if (reply.status == 0) http = std::make_unique<HttpConnection>(address);
          } else {
            ADD_FAILURE() << reply.status << " " << reply.body;
          }
        }
      });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  int64_t acknowledged() const { return acknowledged_.load(); }
  int64_t unknown() const { return unknown_.load(); }
  int64_t requests() const { return requests_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acknowledged_{0};
  std::atomic<int64_t> unknown_{0};
  std::atomic<int64_t> requests_{0};
  std::vector<std::thread> threads_;
};

TEST_F(ClusterTest, ANodeJoinsClaimsEveryShardAndServesTheOriginalsApi) {
  Init(4);
  StartNode(1);
  StartAggregator();
  Json status = Status();
  EXPECT_EQ(status["exitCode"], 0);
  EXPECT_EQ(status["shards"], 4);
  ASSERT_EQ(status["nodes"].size(), 1u);
  EXPECT_EQ(status["nodes"][0]["id"], "n1");
  EXPECT_EQ(status["nodes"][0]["shards"].size(), 4u);
  EXPECT_EQ(status["nodes"][0]["address"], "http://" + addresses_[1]);

  Reply reply = HttpConnection(aggregator_address_).Post("/increment", R"({"value":5})");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, R"({"success":true,"shardId":1,"count":5})");
  RunResult inc = RunShardctl({"inc", "3", "--url", "http://" + aggregator_address_});
  EXPECT_EQ(inc.exit_code, 0) << inc.err;
  EXPECT_EQ(Total(), 8);
  RunResult text = Shardctl({"cluster", "status"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("n1"), std::string::npos) << text.out;
}

// Leaderboards and pages through a cluster: the aggregator reads each shard
// from the node that holds it (/shards/<k>/..., with the epoch), two nodes.
TEST_F(ClusterTest, LeaderboardsAndPagesAreExactAcrossNodes) {
  ASSERT_NO_FATAL_FAILURE(StartTwoNodesAndAnAggregator());
  std::map<std::string, int64_t> totals = IncrementSpreadCounters(aggregator_address_, 240);
  ExpectExactLeaderboardsAndPages(aggregator_address_, totals);
}

// Batches of many counters through a cluster: each share goes to the node
// holding its shard (/shards/<k>/increment-many).
TEST_F(ClusterTest, BatchesOfManyCountersAreExactAcrossNodes) {
  ASSERT_NO_FATAL_FAILURE(StartTwoNodesAndAnAggregator());
  std::map<std::string, int64_t> totals =
      IncrementSpreadCountersInBatches(aggregator_address_, 240);
  ExpectExactLeaderboardsAndPages(aggregator_address_, totals);
}

TEST_F(ClusterTest, InitRefusesASecondClusterAndStatusWithoutOneSaysWhatToRun) {
  RunResult none = Shardctl({"cluster", "status"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("shardctl cluster init"), std::string::npos) << none.err;
  Init(3);
  RunResult again = Shardctl({"cluster", "init", "--shards", "5"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("3 shards exists already"), std::string::npos) << again.err;
}

TEST_F(ClusterTest, ANodeRefusesAStaleEpochWith421) {
  Init(2);
  StartNode(1);
  HttpConnection node(addresses_[1]);
  // Epoch 1 is the claim's; the raw request names epoch 7.
  std::string request =
      "POST /shards/0/increment HTTP/1.1\r\nHost: x\r\nShardctl-Epoch: 7\r\n"
      "Content-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n"
      "{\"value\":2}";
  std::string answer = SendRaw(addresses_[1], request);
  EXPECT_NE(answer.find("421 Misdirected Request"), std::string::npos) << answer;
  EXPECT_NE(answer.find("does not serve shard 0 at epoch 7"), std::string::npos) << answer;
  Reply missing = node.Post("/shards/0/increment", R"({"value":2})");
  EXPECT_EQ(missing.status, 400) << missing.body;
}

TEST_F(ClusterTest, RebalanceAndDrainUnderLoadLoseAndDoubleNothing) {
  Init(6);
  StartNode(1);
  StartAggregator();
  StartNode(2);
  StartNode(3);
  Load load(aggregator_address_, 4);
  // Some load reaches the shards before they move.
  for (auto deadline = Clock::now() + 10s; load.requests() < 200 && Clock::now() < deadline;) {
    std::this_thread::sleep_for(10ms);
  }
  RunResult rebalance = Shardctl({"cluster", "rebalance"});
  ASSERT_EQ(rebalance.exit_code, 0) << rebalance.out << rebalance.err;
  EXPECT_NE(rebalance.out.find("writes paused"), std::string::npos) << rebalance.out;
  EXPECT_EQ(Loads(), (std::map<std::string, size_t>{{"n1", 2}, {"n2", 2}, {"n3", 2}}));
  RunResult drain = Shardctl({"cluster", "drain", "n1"});
  ASSERT_EQ(drain.exit_code, 0) << drain.out << drain.err;
  EXPECT_EQ(Loads(), (std::map<std::string, size_t>{{"n1", 0}, {"n2", 3}, {"n3", 3}}));
  load.Stop();
  // n1 holds nothing now: stopping it costs no count.
  nodes_[1]->Signal(SIGTERM);
  ASSERT_TRUE(nodes_[1]->WaitForExit(10s).has_value());
  const int64_t total = Total();
  EXPECT_GE(total, load.acknowledged());
  EXPECT_LE(total, load.acknowledged() + load.unknown());
  EXPECT_GT(load.requests(), 200);
}

TEST_F(ClusterTest, AKeyedRetryAfterAMoveIsAnsweredFromTheKeysThatMoved) {
  Init(2);
  StartNode(1);
  StartNode(2);
  StartAggregator();
  const std::string url = "http://" + aggregator_address_;
  RunResult first = RunShardctl({"inc", "4", "--idempotency-key", "order-1", "--url", url});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  Json status = Status();
  const int shard = 0;  // 4 mod 2
  std::string owner = status["shardPlacements"][shard]["owner"];
  RunResult moved = Shardctl({"cluster", "move", std::to_string(shard), "--to",
                              owner == "n1" ? "n2" : "n1"});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  RunResult again = RunShardctl({"inc", "4", "--idempotency-key", "order-1", "--url", url});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, first.out);
  EXPECT_EQ(Total(), 4);
  EXPECT_EQ(Status()["shardPlacements"][shard]["epoch"], 2);
}

TEST_F(ClusterTest, ADeadNodeShowsInStatusAndComesBackWithItsCounts) {
  Init(2);
  StartNode(1);
  StartAggregator();
  HttpConnection http(aggregator_address_);
  ASSERT_EQ(http.Post("/increment", R"({"value":3})").status, 200);
  ASSERT_EQ(http.Post("/increment", R"({"value":4})").status, 200);
  nodes_[1]->Signal(SIGKILL);
  ASSERT_TRUE(nodes_[1]->WaitForExit(5s).has_value());
  Json status;
  for (auto deadline = Clock::now() + 15s; Clock::now() < deadline;) {
    status = Status();
    if (status["exitCode"] == 4) break;
    std::this_thread::sleep_for(100ms);  // the node's lease expires in etcd's own time
  }
  ASSERT_EQ(status["exitCode"], 4) << status.dump();
  EXPECT_EQ(status["nodes"][0]["alive"], false);
  StartNode(1);  // same id, same data directory
  EXPECT_EQ(Status()["exitCode"], 0);
  EXPECT_EQ(Total(), 7);
}

TEST_F(ClusterTest, WithEtcdDownWritesAndTotalsGoOnAndStatusSaysSo) {
  Init(2);
  StartNode(1);
  StartAggregator();
  etcd_.Stop();
  HttpConnection http(aggregator_address_);
  EXPECT_EQ(http.Post("/increment", R"({"value":3})").status, 200);
  EXPECT_EQ(Total(), 3);
  RunResult status = Shardctl({"cluster", "status", "--timeout", "1"});
  EXPECT_EQ(status.exit_code, 3);
  EXPECT_NE(status.err.find("keep serving"), std::string::npos) << status.err;
  ASSERT_TRUE(etcd_.Restart());
  EXPECT_EQ(http.Post("/increment", R"({"value":4})").status, 200);
  EXPECT_EQ(Total(), 7);
}

}  // namespace
}  // namespace shardctl::testing
