// `shardctl cluster reshard` against a real etcd and real nodes: a cluster
// with keyed and unkeyed counts is drained to one node, stopped, resharded
// (grown and shrunk), started again, and every total, every keyed retry and
// the routing of new increments are checked; and the refusals, and a
// reshard that stopped half-way, finished by running it again.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/integration/etcd_harness.h"
#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// The counters the tests write, as GET /total queries (a window of a week,
// so that a test does not cross into the next one).
const std::vector<std::string> kCounters = {"", "?counter=pages", "?counter=api&window=604800"};

class ReshardTest : public EtcdClusterTest {
 protected:
  // POST /increment to the aggregator with an Idempotency-Key (none if "").
  Reply Increment(const std::string& body, const std::string& key = "") {
    httplib::Client client(aggregator_address_.substr(0, aggregator_address_.rfind(':')),
                           std::stoi(aggregator_address_.substr(aggregator_address_.rfind(':') + 1)));
    client.set_read_timeout(10, 0);
    httplib::Headers headers;
    if (!key.empty()) headers.emplace("Idempotency-Key", key);
    httplib::Result result = client.Post("/increment", headers, body, "application/json");
    if (!result) return {};
    return {result->status, result->body, result->get_header_value("Content-Type")};
  }

  // Unkeyed increments of every counter, values spread over many shards.
  void Load() {
    HttpConnection http(aggregator_address_);
    for (int i = -30; i < 90; ++i) {
      const std::string value = std::to_string(i * 7 + 1);
      ASSERT_EQ(http.Post("/increment", R"({"value":)" + value + "}").status, 200);
      ASSERT_EQ(http.Post("/increment", R"({"value":)" + value + R"(,"counter":"pages"})").status,
                200);
      ASSERT_EQ(http.Post("/increment",
                          R"({"value":)" + value + R"(,"counter":"api","window":604800})")
                    .status,
                200);
    }
  }

  // Every counter's total, by query.
  std::map<std::string, int64_t> Totals() {
    std::map<std::string, int64_t> totals;
    HttpConnection http(aggregator_address_);
    for (const std::string& query : kCounters) {
      Reply reply = http.Get("/total" + query);
      EXPECT_EQ(reply.status, 200) << query << " " << reply.body;
      Json json = Json::parse(reply.body, nullptr, false);
      totals[query] = json.is_object() ? json.value("total", int64_t{-1}) : -1;
    }
    return totals;
  }

  // cluster status --json (it exits 4 while a shard has no live node).
  Json Status() {
    RunResult status = Shardctl({"cluster", "status", "--json"});
    Json json = Json::parse(status.out, nullptr, false);
    EXPECT_TRUE(json.is_object()) << status.out << status.err;
    return json;
  }

  // Stops node `n` (it leaves etcd at once) and waits for it to exit 0.
  void StopNode(int n) {
    nodes_[n]->Signal(SIGTERM);
    std::optional<int> code = nodes_[n]->WaitForExit(10s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << nodes_[n]->Stderr();
  }

  RunResult Reshard(int shards, const std::vector<int>& dirs_of_nodes, const std::string& node) {
    std::vector<std::string> args = {"cluster", "reshard", "--shards", std::to_string(shards),
                                     "--node-id", node};
    for (int n : dirs_of_nodes) {
      args.push_back("--data-dir");
      args.push_back(data_[n]->path());
    }
    return Shardctl(args);
  }

  // How many entries a directory has.
  static long EntriesIn(const std::string& dir) {
    return std::distance(fs::directory_iterator(dir), fs::directory_iterator());
  }

  // Whether `data_dir` holds exactly the old shards 0..n-1 and nothing a
  // reshard leaves (marker, staging, retired shards).
  static void ExpectUntouched(const std::string& data_dir, int n) {
    EXPECT_EQ(EntriesIn(data_dir), n);
    for (int k = 0; k < n; ++k) EXPECT_TRUE(fs::exists(data_dir + "/shard-" + std::to_string(k)));
  }
};

TEST_F(ReshardTest, GrowingFromThreeToTwelveKeepsEveryCountAndEveryKeysFirstAnswer) {
  Init(3);
  StartNode(1);
  StartNode(2);
  StartAggregator();
  RunResult spread = Shardctl({"cluster", "rebalance"});
  ASSERT_EQ(spread.exit_code, 0) << spread.err;

  Reply single = Increment(R"({"value":7})", "single-1");
  ASSERT_EQ(single.status, 200) << single.body;
  // Values 3 and 6 go to shard 0 (sum 9), 10 and 11 to shards 1 and 2.
  Reply batch = Increment(R"({"values":[3,6,10,11],"counter":"api","window":604800})", "batch-1");
  ASSERT_EQ(batch.status, 200) << batch.body;
  Load();
  const std::map<std::string, int64_t> before = Totals();

  RunResult drained = Shardctl({"cluster", "drain", "n2"});
  ASSERT_EQ(drained.exit_code, 0) << drained.err;
  StopNode(1);
  StopNode(2);

  // Both data directories, as when several nodes' are on one host: n2's
  // holds nothing but retired shards.
  RunResult resharded = Reshard(12, {1, 2}, "n1");
  ASSERT_EQ(resharded.exit_code, 0) << resharded.err;
  EXPECT_NE(resharded.out.find("from 3 to 12 shards"), std::string::npos) << resharded.out;
  EXPECT_NE(resharded.out.find("2 idempotency keys"), std::string::npos) << resharded.out;

  // The aggregator routed by 3: it stops on its own, non-zero, saying why.
  std::optional<int> aggregator_exit = aggregator_->WaitForExit(10s);
  ASSERT_TRUE(aggregator_exit.has_value());
  EXPECT_EQ(*aggregator_exit, 4);
  EXPECT_NE(aggregator_->Stderr().find("resharded from 3 to 12 shards"), std::string::npos)
      << aggregator_->Stderr();

  StartNode(1);
  StartNode(2);
  StartAggregator();
  Json status = Status();
  EXPECT_EQ(status["shards"], 12);
  for (const Json& shard : status["shardPlacements"]) {
    EXPECT_EQ(shard["owner"], "n1") << shard.dump();
    EXPECT_EQ(shard["epoch"], status["shardPlacements"][0]["epoch"]) << shard.dump();
  }
  EXPECT_EQ(Totals(), before);

  // Retries get their first answers and count nothing, though the batch's
  // values now go to shards 3, 6, 10 and 11, which never saw its key.
  Reply single_again = Increment(R"({"value":7})", "single-1");
  ASSERT_EQ(single_again.status, 200) << single_again.body;
  EXPECT_EQ(Json::parse(single_again.body)["count"], Json::parse(single.body)["count"]);
  Reply batch_again =
      Increment(R"({"values":[3,6,10,11],"counter":"api","window":604800})", "batch-1");
  ASSERT_EQ(batch_again.status, 200) << batch_again.body;
  EXPECT_EQ(Json::parse(batch_again.body)["applied"], 4) << batch_again.body;
  EXPECT_EQ(Totals(), before);

  // New increments go by value mod 12, and spread over both nodes.
  Reply eleven = Increment(R"({"value":11})");
  ASSERT_EQ(eleven.status, 200) << eleven.body;
  EXPECT_EQ(Json::parse(eleven.body)["shardId"], 11);
  RunResult rebalanced = Shardctl({"cluster", "rebalance"});
  ASSERT_EQ(rebalanced.exit_code, 0) << rebalanced.err;
  std::map<std::string, int64_t> after = before;
  after[""] += 11;
  EXPECT_EQ(Totals(), after);
  EXPECT_EQ(Increment(R"({"value":7})", "single-1").body, single_again.body);
}

TEST_F(ReshardTest, ShrinkingFromTwelveToFiveSumsTheShardsAndKeepsTheKeys) {
  Init(12);
  StartNode(1);
  StartAggregator();
  Reply single = Increment(R"({"value":9,"counter":"pages"})", "single-9");
  ASSERT_EQ(single.status, 200) << single.body;
  Load();
  const std::map<std::string, int64_t> before = Totals();
  StopNode(1);

  RunResult resharded = Shardctl({"cluster", "reshard", "--shards", "5", "--node-id", "n1",
                                  "--data-dir", data_[1]->path(), "--json"});
  ASSERT_EQ(resharded.exit_code, 0) << resharded.err;
  Json report = Json::parse(resharded.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << resharded.out;
  EXPECT_EQ(report["from"], 12);
  EXPECT_EQ(report["to"], 5);
  EXPECT_EQ(report["node"], "n1");
  EXPECT_EQ(report["idempotencyKeys"], 1);
  EXPECT_EQ(report["retired"].size(), 12u);
  RunResult again = Reshard(5, {1}, "n1");
  EXPECT_EQ(again.exit_code, 1) << again.err;  // done: 5 is the count already
  EXPECT_NE(again.err.find("has 5 shards already"), std::string::npos) << again.err;
  EXPECT_EQ(EntriesIn(data_[1]->path() + "/retired"), 12);

  StartNode(1);
  StartAggregator();
  EXPECT_EQ(Status()["shards"], 5);
  EXPECT_EQ(Totals(), before);
  Reply retry = Increment(R"({"value":9,"counter":"pages"})", "single-9");
  ASSERT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(Json::parse(retry.body)["count"], Json::parse(single.body)["count"]);
  EXPECT_EQ(Totals(), before);
}

TEST_F(ReshardTest, RefusedWhileANodeIsAliveOrAShardIsInUseAndChangesNothing) {
  Init(3);
  StartNode(1);
  StartAggregator();
  ASSERT_EQ(Increment(R"({"value":5})").status, 200);
  ExpectUntouched(data_[1]->path(), 3);

  RunResult alive = Reshard(12, {1}, "n1");
  EXPECT_EQ(alive.exit_code, 1);
  EXPECT_NE(alive.err.find("node n1 is alive"), std::string::npos) << alive.err;
  RunResult same = Reshard(3, {1}, "n1");
  EXPECT_EQ(same.exit_code, 1);
  RunResult too_many = Reshard(1025, {1}, "n1");
  EXPECT_EQ(too_many.exit_code, 2) << too_many.err;

  StopNode(1);
  // A plain serve holds the shards' locks: in use.
  ServerProcess holder({"serve", "--shards", "3", "--port", "0", "--shard-base-port", "0",
                        "--data-dir", data_[1]->path()});
  ASSERT_EQ(holder.WaitForListeners(4, 20s).size(), 4u) << holder.Stderr();
  RunResult locked = Reshard(12, {1}, "n1");
  EXPECT_EQ(locked.exit_code, 5) << locked.err;
  EXPECT_NE(locked.err.find("in use by another shardctl"), std::string::npos) << locked.err;
  holder.Signal(SIGTERM);
  ASSERT_TRUE(holder.WaitForExit(10s).has_value());

  // A shard whose data is elsewhere.
  TempDir empty;
  RunResult missing = Shardctl({"cluster", "reshard", "--shards", "12", "--node-id", "n1",
                                "--data-dir", empty.path()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("shards 0, 1, 2 are not in"), std::string::npos) << missing.err;

  EXPECT_EQ(Status()["shards"], 3);
  ExpectUntouched(data_[1]->path(), 3);
  StartNode(1);
  StartAggregator();  // one that reads the topology with n1 alive again
  EXPECT_EQ(Totals()[""], 5);
}

TEST_F(ReshardTest, AReshardThatStoppedHalfWayIsRefusedByServeAndFinishedByARerun) {
  Init(3);
  StartNode(1);
  StartAggregator();
  Load();
  const std::map<std::string, int64_t> before = Totals();
  StopNode(1);

  // A file where the old shards are to be set aside: the swap fails after
  // the commit in etcd, as a crash there would leave it.
  const std::string retired = data_[1]->path() + "/retired";
  { std::ofstream(retired) << "in the way\n"; }
  RunResult stopped = Reshard(6, {1}, "n1");
  ASSERT_EQ(stopped.exit_code, 4) << stopped.err;
  EXPECT_NE(stopped.err.find("run the same command again"), std::string::npos) << stopped.err;
  EXPECT_EQ(Status()["shards"], 6);

  ServerProcess refused({"serve", "--etcd", etcd_.url(), "--bind", "127.0.0.11", "--port", "0",
                         "--node-id", "n1", "--data-dir", data_[1]->path()});
  std::optional<int> code = refused.WaitForExit(20s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 5);
  EXPECT_NE(refused.Stderr().find("shardctl cluster reshard --etcd " + etcd_.url() +
                                  " --shards 6 --node-id n1 --data-dir"),
            std::string::npos)
      << refused.Stderr();

  fs::remove(retired);
  RunResult finished = Reshard(6, {1}, "n1");
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  EXPECT_FALSE(fs::exists(data_[1]->path() + "/RESHARD"));
  EXPECT_FALSE(fs::exists(data_[1]->path() + "/reshard-staging"));
  StartNode(1);
  StartAggregator();
  EXPECT_EQ(Totals(), before);
}

TEST_F(ReshardTest, AReshardThatStoppedBeforeItsCommitIsRedoneByARerun) {
  Init(3);
  StartNode(1);
  StartAggregator();
  Load();
  const std::map<std::string, int64_t> before = Totals();
  StopNode(1);
  // What a crash while staging leaves: the marker, and half a staging.
  const std::string dir = data_[1]->path();
  { std::ofstream(dir + "/RESHARD") << "shardctl reshard 1\nfrom 3 to 6 node n1 epoch 2\n"
                                    << "data-dir " << dir << "\n"; }
  fs::create_directories(dir + "/reshard-staging/shard-0");
  RunResult other = Reshard(7, {1}, "n1");
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("finish it first with: shardctl cluster reshard"), std::string::npos)
      << other.err;
  EXPECT_EQ(Status()["shards"], 3);

  RunResult finished = Reshard(6, {1}, "n1");
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  EXPECT_FALSE(fs::exists(dir + "/RESHARD"));
  StartNode(1);
  StartAggregator();
  EXPECT_EQ(Status()["shards"], 6);
  EXPECT_EQ(Totals(), before);
}

}  // namespace
}  // namespace shardctl::testing
