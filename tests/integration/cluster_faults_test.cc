// The cluster's checker, in the manner of Jepsen's counter test and Redis's
// consistency-test.rb: clients send keyed increments through an aggregator
// that follows a real etcd, retrying each with its key until it is
// acknowledged (as `shardctl inc` does), and record every increment as
// acknowledged, refused or unknown. Meanwhile faults hit the cluster: shard
// moves and rebalances, kill -9 of a node and its restart, SIGSTOP of a node
// for longer than its lease and SIGCONT, an etcd restart. Every node has its
// own loopback address. At the end the total must satisfy
//   sum(acknowledged) <= total <= sum(acknowledged) + sum(unknown)
// (nothing acknowledged lost, no keyed retry counted twice).
// SHARDCTL_CHECKER_SECONDS stretches the load between faults (bench/checker.sh).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/integration/checker.h"
#include "tests/integration/etcd_harness.h"
#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr int kShards = 6;

class ClusterFaultsTest : public EtcdClusterTest {
 protected:
  // Waits until every shard has a live node; false after `timeout`.
  bool WaitUntilWhole(std::chrono::milliseconds timeout = 20s) {
    for (auto deadline = Clock::now() + timeout; Clock::now() < deadline;) {
      if (Shardctl({"cluster", "status", "--json", "--timeout", "1"}).exit_code == 0) return true;
      std::this_thread::sleep_for(100ms);  // a lease expires or a node re-joins in its own time
    }
    return false;
  }

  // The owner of each shard, from cluster status.
  std::vector<std::string> Owners() {
    RunResult status = Shardctl({"cluster", "status", "--json"});
    Json json = Json::parse(status.out, nullptr, false);
    std::vector<std::string> owners;
    if (!json.is_object()) return owners;
    for (const Json& shard : json["shardPlacements"]) {
      owners.push_back(shard["owner"].is_string() ? shard["owner"].get<std::string>() : "");
    }
    return owners;
  }

};

TEST_F(ClusterFaultsTest, CheckerHoldsThroughMovesKillsPausesAndAnEtcdRestart) {
  ASSERT_EQ(Shardctl({"cluster", "init", "--shards", std::to_string(kShards)}).exit_code, 0);
  StartNode(1);
  StartNode(2);
  StartNode(3);
  ServerProcess aggregator({"serve", "--role", "aggregator", "--etcd", etcd_.url(), "--port", "0",
                            "--shard-timeout", "1"});
  auto listeners = aggregator.WaitForListeners(1, 20s);
  ASSERT_EQ(listeners.size(), 1u) << aggregator.Stderr();
  const std::string address = listeners["aggregator"];

  Tally tally;
  std::map<std::string, int> faults;
  int moves = 0;
  {
    Checker checker(address, tally);
    auto dwell = [] { std::this_thread::sleep_for(Dwell(6)); };  // load runs between faults
    dwell();

    RunResult rebalance = Shardctl({"cluster", "rebalance"});
    EXPECT_EQ(rebalance.exit_code, 0) << rebalance.err;
    moves += static_cast<int>(std::count(rebalance.out.begin(), rebalance.out.end(), '\n'));
    ++faults["rebalance"];
    dwell();

    nodes_[2]->Signal(SIGKILL);
    ASSERT_TRUE(nodes_[2]->WaitForExit(5s).has_value());
    ++faults["kill -9 node"];
    dwell();
    StartNode(2);  // same id, port and data directory
    EXPECT_TRUE(WaitUntilWhole());

    nodes_[3]->Signal(SIGSTOP);  // longer than its 2 s lease
    ++faults["SIGSTOP node 3 s"];
    std::this_thread::sleep_for(3s);
    nodes_[3]->Signal(SIGCONT);
    EXPECT_TRUE(WaitUntilWhole());
    dwell();

    std::vector<std::string> owners = Owners();
    ASSERT_EQ(owners.size(), static_cast<size_t>(kShards));
    for (int shard = 0; shard < kShards; ++shard) {
      if (owners[shard] != "n1") continue;
      RunResult moved = Shardctl({"cluster", "move", std::to_string(shard), "--to", "n3"});
      EXPECT_EQ(moved.exit_code, 0) << moved.err;
      moves += moved.exit_code == 0 ? 1 : 0;
      ++faults["move"];
      break;
    }
    dwell();

    ASSERT_TRUE(etcd_.Restart());
    ++faults["etcd restart"];
    EXPECT_TRUE(WaitUntilWhole());
    dwell();

    RunResult drain = Shardctl({"cluster", "drain", "n1"});
    EXPECT_EQ(drain.exit_code, 0) << drain.err;
    moves += static_cast<int>(std::count(drain.out.begin(), drain.out.end(), '\n')) - 1;
    ++faults["drain"];
    dwell();
    checker.Stop();
  }
  ASSERT_TRUE(WaitUntilWhole());
  httplib::Client http("http://" + address);
  httplib::Result total = http.Get("/total");
  ASSERT_TRUE(total && total->status == 200) << (total ? total->body : "no answer");
  const int64_t counted = Json::parse(total->body)["total"].get<int64_t>();

  const int64_t lost = tally.Lost(counted);
  const int64_t doubled = tally.Doubled(counted);
  std::string fault_list;
  for (const auto& [kind, count] : faults) {
    fault_list += (fault_list.empty() ? "" : ", ") + kind + " x" + std::to_string(count);
  }
  std::cout << "checker: " << tally.increments << " increments (" << tally.retries
            << " retries), acknowledged sum " << tally.acknowledged << ", unknown sum "
            << tally.unknown << ", refused sum " << tally.refused << "; total " << counted
            << "; lost " << lost << ", doubled " << doubled << "; moves " << moves
            << "; faults: " << fault_list << "\n";
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(doubled, 0);
  EXPECT_GT(tally.increments.load(), 100);
  EXPECT_GE(moves, 4);
}

}  // namespace
}  // namespace shardctl::testing
