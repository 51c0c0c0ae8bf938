// Shards that fail behind an aggregator run as separate processes: fail fast,
// probing and return, routing modes, timeouts answered 504, partial totals,
// GET /shards and `shardctl status`.
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Three `--role shard` processes, each persisting into its own directory,
// behind one `--role aggregator`. A shard can be killed and started again on
// the same port and data.
class FleetTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& aggregator_extra = {}) {
    std::vector<std::string> args = {"serve", "--role", "aggregator", "--port", "0"};
    for (int id = 0; id < 3; ++id) {
      data_dirs_.push_back(std::make_unique<TempDir>());
      shards_.emplace_back();
      ports_.push_back("0");
      StartShard(id);
      args.push_back("--shard");
      args.push_back("http://" + shard_addresses_[id]);
    }
    args.insert(args.end(), aggregator_extra.begin(), aggregator_extra.end());
    aggregator_ = std::make_unique<ServerProcess>(args);
    auto listeners = aggregator_->WaitForListeners(1);
    ASSERT_EQ(listeners.size(), 1u) << aggregator_->Stderr();
    address_ = listeners["aggregator"];
  }

  void StartShard(int id) {
    shards_[id] = std::make_unique<ServerProcess>(std::vector<std::string>{
        "serve", "--role", "shard", "--shard-id", std::to_string(id), "--shards", "3", "--port",
        ports_[id], "--data-dir", data_dirs_[id]->path()});
    auto listeners = shards_[id]->WaitForListeners(1);
    ASSERT_EQ(listeners.size(), 1u) << shards_[id]->Stderr();
    std::string address = listeners["shard " + std::to_string(id)];
    if (shard_addresses_.size() <= static_cast<size_t>(id)) shard_addresses_.push_back(address);
    ports_[id] = address.substr(address.rfind(':') + 1);
  }

  void KillShard(int id) {
    shards_[id]->Signal(SIGKILL);
    ASSERT_TRUE(shards_[id]->WaitForExit(5s).has_value());
  }

  // Waits until GET /shards says shard `id` is up (or down); false on timeout.
  bool WaitForShardState(int id, const std::string& state) {
    HttpConnection http(address_);
    std::string wanted = "\"shardId\":" + std::to_string(id) + ",\"since\":";
    for (auto deadline = Clock::now() + 10s; Clock::now() < deadline;) {
      std::string body = http.Get("/shards").body;
      size_t at = body.find(wanted);
      if (at != std::string::npos &&
          body.find("\"state\":\"" + state + "\"", at) == body.find("\"state\":", at)) {
        return true;
      }
      std::this_thread::sleep_for(20ms);  // polling a state that changes in the background
    }
    return false;
  }

  std::string Increment(int value) {
    return "{\"value\":" + std::to_string(value) + "}";
  }

  std::vector<std::unique_ptr<TempDir>> data_dirs_;
  std::vector<std::unique_ptr<ServerProcess>> shards_;
  std::vector<std::string> shard_addresses_;
  std::vector<std::string> ports_;
  std::unique_ptr<ServerProcess> aggregator_;
  std::string address_;
};

TEST_F(FleetTest, ShardsListsEveryShardUpWithItsAddressAndCount) {
  Start();
  HttpConnection http(address_);
  ASSERT_EQ(http.Post("/increment", Increment(4)).status, 200);  // shard 1
  Reply shards = http.Get("/shards");
  ASSERT_EQ(shards.status, 200);
  EXPECT_NE(shards.body.find(R"("routing":"value")"), std::string::npos) << shards.body;
  EXPECT_NE(shards.body.find("\"address\":\"http://" + shard_addresses_[1] +
                             "\",\"count\":4,\"lastError\":null,\"shardId\":1"),
            std::string::npos)
      << shards.body;

  RunResult status = RunShardctl({"status", "--url", "http://" + address_});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("3 of 3 shards up"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find(shard_addresses_[2]), std::string::npos) << status.out;
}

TEST_F(FleetTest, DeadShardIsMarkedDownListedAndUsedAgainOnceItIsBack) {
  Start();
  HttpConnection http(address_);
  ASSERT_EQ(http.Post("/increment", Increment(1)).status, 200);
  KillShard(1);
  EXPECT_EQ(http.Post("/increment", Increment(1)).status, 503);
  ASSERT_TRUE(WaitForShardState(1, "down"));

  Reply skipped = http.Post("/increment", Increment(1));
  EXPECT_EQ(skipped.status, 503);
  EXPECT_NE(skipped.body.find("is down"), std::string::npos) << skipped.body;
  EXPECT_NE(skipped.body.find(shard_addresses_[1]), std::string::npos) << skipped.body;
  EXPECT_EQ(http.Post("/increment", Increment(3)).status, 200);  // shard 0 still counts

  RunResult status = RunShardctl({"status", "--url", "http://" + address_});
  EXPECT_EQ(status.exit_code, 4) << status.out << status.err;
  EXPECT_NE(status.out.find("down"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("2 of 3 shards up"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("cannot connect"), std::string::npos) << status.out;

  StartShard(1);  // same port, same data
  ASSERT_TRUE(WaitForShardState(1, "up")) << http.Get("/shards").body;
  EXPECT_EQ(http.Post("/increment", Increment(1)).status, 200);
  EXPECT_EQ(http.Get("/total").body, R"({"total":5})");  // 1 + 3 + 1; the refused ones not
}

TEST_F(FleetTest, ShardThatDoesNotAnswerTimesOutWith504ThenFailsFast) {
  HeldPort silent;  // accepts connections, never answers
  data_dirs_.push_back(std::make_unique<TempDir>());
  shards_.emplace_back();
  ports_.push_back("0");
  StartShard(0);
  aggregator_ = std::make_unique<ServerProcess>(std::vector<std::string>{
      "serve", "--role", "aggregator", "--port", "0", "--shard-timeout", "1", "--shard",
      "http://" + shard_addresses_[0], "--shard",
      "http://127.0.0.1:" + std::to_string(silent.port())});
  auto listeners = aggregator_->WaitForListeners(1);
  ASSERT_EQ(listeners.size(), 1u) << aggregator_->Stderr();
  address_ = listeners["aggregator"];
  HttpConnection http(address_);

  Reply timed_out = http.Post("/increment", Increment(1));  // to the silent shard
  EXPECT_EQ(timed_out.status, 504) << timed_out.body;
  EXPECT_NE(timed_out.body.find("may or may not have been applied"), std::string::npos)
      << timed_out.body;

  // Marked down now: answered at once instead of after another timeout.
  auto started = Clock::now();
  Reply fast = http.Post("/increment", Increment(1));
  EXPECT_EQ(fast.status, 503) << fast.body;
  EXPECT_LT(Clock::now() - started, 500ms);
  EXPECT_EQ(http.Post("/increment", Increment(2)).status, 200);  // shard 0
}

TEST_F(FleetTest, RoundRobinAndRandomKeepTakingWritesWhileAShardIsDown) {
  for (const char* routing : {"round-robin", "random"}) {
    SCOPED_TRACE(routing);
    data_dirs_.clear();
    shards_.clear();
    shard_addresses_.clear();
    ports_.clear();
    Start({"--routing", routing});
    HttpConnection http(address_);
    KillShard(2);
    for (int i = 0; i < 30; ++i) {
      Reply reply = http.Post("/increment", Increment(1));
      ASSERT_EQ(reply.status, 200) << reply.body;
      EXPECT_EQ(reply.body.find("\"shardId\":2"), std::string::npos) << reply.body;
    }
    Reply partial = http.Get("/total?partial=true");
    EXPECT_EQ(partial.status, 200);
    EXPECT_TRUE(partial.body.starts_with(R"({"total":30,"partial":true,"missing":[{"error":)"))
        << partial.body;
    StartShard(2);
    ASSERT_TRUE(WaitForShardState(2, "up"));
    EXPECT_EQ(http.Get("/total").body, R"({"total":30})");
  }
}

TEST_F(FleetTest, PartialTotalSumsTheShardsThatAnswerAndNamesTheMissingOne) {
  Start();
  HttpConnection http(address_);
  for (int value : {3, 4, 5}) ASSERT_EQ(http.Post("/increment", Increment(value)).status, 200);
  KillShard(1);

  EXPECT_EQ(http.Get("/total").status, 503);
  Reply partial = http.Get("/total?partial=true&perShard=true");
  EXPECT_EQ(partial.status, 200);
  EXPECT_TRUE(partial.body.starts_with(
      R"({"total":8,"shards":[{"shardId":0,"count":3},{"shardId":1,"count":null},)"
      R"({"shardId":2,"count":5}],"partial":true,"missing":[{"error":")"))
      << partial.body;
  EXPECT_NE(partial.body.find(shard_addresses_[1]), std::string::npos) << partial.body;
  EXPECT_EQ(http.Get("/total?partial=maybe").status, 400);

  RunResult cli = RunShardctl({"total", "--partial", "--url", "http://" + address_});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out, "8\n");
  EXPECT_NE(cli.err.find("partial total without shard 1"), std::string::npos) << cli.err;
}

TEST_F(FleetTest, RoutingIsRefusedOnAShardAndUnknownRoutingIsAUsageError) {
  RunResult on_shard = RunShardctl({"serve", "--role", "shard", "--shard-id", "0", "--routing",
                                    "random", "--in-memory", "--port", "0"});
  EXPECT_EQ(on_shard.exit_code, 2);
  EXPECT_NE(on_shard.err.find("--routing is for the aggregator"), std::string::npos)
      << on_shard.err;
  RunResult unknown = RunShardctl({"serve", "--routing", "hash", "--in-memory"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("--routing"), std::string::npos) << unknown.err;
}

}  // namespace
}  // namespace shardctl::testing
