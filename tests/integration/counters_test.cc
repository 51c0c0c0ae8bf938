// Named, windowed and listed counters over HTTP and through the binary.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

class CountersTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.ready()); }

  RunResult Run(const std::vector<std::string>& args) { return cluster_.Run(args); }
  std::string Body(const std::string& path) { return http_.Get(path).body; }

  Cluster cluster_;
  HttpConnection http_{cluster_.aggregator()};
};

TEST_F(CountersTest, NamedCountersAreIndependentOfEachOtherAndOfTheDefault) {
  EXPECT_EQ(http_.Post("/increment", R"({"value":5,"counter":"pageviews"})").body,
            R"({"success":true,"shardId":2,"count":5,"counter":"pageviews"})");
  http_.Post("/increment", R"({"value":7,"counter":"pageviews"})");
  http_.Post("/increment", R"({"value":2,"counter":"clicks"})");
  http_.Post("/increment", R"({"value":1})");
  EXPECT_EQ(Body("/total?counter=pageviews"), R"({"total":12,"counter":"pageviews"})");
  EXPECT_EQ(Body("/total?counter=clicks"), R"({"total":2,"counter":"clicks"})");
  EXPECT_EQ(Body("/total"), R"({"total":1})");
  EXPECT_EQ(Body("/total?counter=never"), R"({"total":0,"counter":"never"})");
}

TEST_F(CountersTest, ShardsReportTheirPartOfEachCounter) {
  http_.Post("/increment", R"({"value":4,"counter":"pageviews"})");  // shard 1
  HttpConnection shard1(cluster_.shard(1));
  EXPECT_EQ(shard1.Get("/count?counter=pageviews").body,
            R"({"shardId":1,"count":4,"counter":"pageviews"})");
  EXPECT_EQ(shard1.Get("/count").body, R"({"shardId":1,"count":0})");
}

TEST_F(CountersTest, BadNamesAndWindowsAre400AndChangeNothing) {
  http_.Post("/increment", R"({"value":3,"counter":"ok"})");
  const std::vector<std::string> bad = {
      R"({"value":1,"counter":""})",
      R"({"value":1,"counter":"has space"})",
      R"({"value":1,"counter":"at@sign"})",
      R"({"value":1,"counter":5})",
      R"({"value":1,"counter":")" + std::string(201, 'a') + R"("})",
      R"({"value":1,"counter":"ok","window":0})",
      R"({"value":1,"counter":"ok","window":-60})",
      R"({"value":1,"counter":"ok","window":604801})",
      R"({"value":1,"counter":"ok","window":"60"})",
  };
  for (const std::string& body : bad) {
    Reply reply = http_.Post("/increment", body);
    EXPECT_EQ(reply.status, 400) << body;
    EXPECT_NE(reply.body.find(R"("error":)"), std::string::npos) << body;
  }
  EXPECT_NE(http_.Post("/increment", R"({"counter":"a b"})").body.find("letters, digits"),
            std::string::npos);
  EXPECT_EQ(http_.Get("/total?counter=a%20b").status, 400);
  EXPECT_EQ(http_.Get("/total?counter=ok&window=0").status, 400);
  EXPECT_EQ(http_.Get("/total?counter=ok&window=x").status, 400);
  EXPECT_EQ(Body("/total?counter=ok"), R"({"total":3,"counter":"ok"})");
  EXPECT_EQ(Body("/counters"), R"({"counters":[{"counter":"ok","total":3}]})");
}

TEST_F(CountersTest, ListingFiltersSortsRanksAndPages) {
  const std::vector<std::pair<std::string, int>> counts = {
      {"player:ann", 30}, {"player:bob", 50}, {"player:cid", 10}, {"team:red", 99}};
  for (const auto& [name, value] : counts) {
    // Two increments per counter, so parts land on different shards.
    http_.Post("/increment",
               R"({"value":)" + std::to_string(value - 1) + R"(,"counter":")" + name + R"("})");
    http_.Post("/increment", R"({"value":1,"counter":")" + name + R"("})");
  }
  EXPECT_EQ(Body("/counters?prefix=player:"),
            R"({"counters":[{"counter":"player:ann","total":30},)"
            R"({"counter":"player:bob","total":50},{"counter":"player:cid","total":10}]})");
  EXPECT_EQ(Body("/counters?top=2"), R"({"counters":[{"counter":"team:red","total":99},)"
                                     R"({"counter":"player:bob","total":50}]})");
  EXPECT_EQ(Body("/counters?prefix=player:&limit=2"),
            R"({"counters":[{"counter":"player:ann","total":30},)"
            R"({"counter":"player:bob","total":50}],"next":"player:bob"})");
  EXPECT_EQ(Body("/counters?prefix=player:&limit=2&after=player:bob"),
            R"({"counters":[{"counter":"player:cid","total":10}]})");
  EXPECT_EQ(http_.Get("/counters?top=0").status, 400);
  EXPECT_EQ(http_.Get("/counters?top=2&after=x").status, 400);
}

TEST_F(CountersTest, ResetZeroesTheCounterOnEveryShardAndSaysWhatItRemoved) {
  for (int value : {1, 2, 3}) {  // one part on each shard
    http_.Post("/increment", R"({"value":)" + std::to_string(value) + R"(,"counter":"gone"})");
  }
  http_.Post("/increment", R"({"value":9,"counter":"kept"})");
  EXPECT_EQ(http_.Post("/reset", R"({"counter":"gone"})").body,
            R"({"counter":"gone","removed":6})");
  EXPECT_EQ(Body("/total?counter=gone"), R"({"total":0,"counter":"gone"})");
  EXPECT_EQ(Body("/total?counter=kept"), R"({"total":9,"counter":"kept"})");
  EXPECT_EQ(http_.Post("/reset", "{}").status, 400);
  EXPECT_EQ(http_.Post("/reset", R"({"counter":"bad name"})").status, 400);
}

TEST_F(CountersTest, WindowedCounterCountsTheCurrentWindowAndSaysWhenItEnds) {
  Reply first = http_.Post("/increment", R"({"value":1,"counter":"api:c42","window":60})");
  EXPECT_EQ(first.status, 200);
  EXPECT_NE(first.body.find(R"("window":60,"windowEnd":)"), std::string::npos) << first.body;
  http_.Post("/increment", R"({"value":2,"counter":"api:c42","window":60})");
  Reply total = http_.Get("/total?counter=api:c42&window=60");
  EXPECT_TRUE(total.body.starts_with(R"({"total":3,"counter":"api:c42","window":60,"windowEnd":)"))
      << total.body;
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  int64_t window_end = std::stoll(total.body.substr(total.body.rfind(':') + 1));
  EXPECT_EQ(window_end % 60, 0);
  EXPECT_GT(window_end, now - 1);
  EXPECT_LE(window_end, now + 60);
  // The windowed counter is a counter of its own.
  EXPECT_EQ(Body("/total?counter=api:c42"), R"({"total":0,"counter":"api:c42"})");
}

TEST_F(CountersTest, EndedWindowsReadAsZero) {
  http_.Post("/increment", R"({"value":5,"counter":"burst","window":1})");
  // A one-second window ends within a second: wait for it by asking.
  auto deadline = std::chrono::steady_clock::now() + 3s;
  std::string total;
  do {
    total = Body("/total?counter=burst&window=1");
  } while (total.find(R"("total":0)") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_NE(total.find(R"("total":0)"), std::string::npos) << total;
}

TEST_F(CountersTest, CliIncTotalCountersAndResetWithCounters) {
  EXPECT_EQ(Run({"inc", "5", "--counter", "pageviews"}).out, "pageviews shard 2: count 5\n");
  EXPECT_EQ(Run({"inc", "3", "-k", "pageviews"}).out, "pageviews shard 0: count 3\n");
  EXPECT_EQ(Run({"inc", "40", "-k", "clicks"}).exit_code, 0);
  EXPECT_EQ(Run({"total", "-k", "pageviews"}).out, "8\n");
  EXPECT_EQ(Run({"total", "--counter", "clicks"}).out, "40\n");
  EXPECT_EQ(Run({"inc", "1", "-k", "api:c42", "--window", "60"}).exit_code, 0);
  EXPECT_EQ(Run({"total", "-k", "api:c42", "--window", "60"}).out, "1\n");

  RunResult table = Run({"counters"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out,
            "NAME                      TOTAL\n"
            "clicks                       40\n"
            "pageviews                     8\n");
  RunResult top = Run({"counters", "--top", "1", "--json"});
  EXPECT_EQ(top.out, "{\"counters\":[{\"counter\":\"clicks\",\"total\":40}]}\n");

  RunResult reset = Run({"reset", "pageviews", "--yes"});
  EXPECT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_EQ(reset.out, "reset pageviews: removed 8\n");
  EXPECT_EQ(Run({"total", "-k", "pageviews"}).out, "0\n");
  // Not on a terminal (stdin is /dev/null here), reset does not ask.
  EXPECT_EQ(Run({"reset", "clicks"}).exit_code, 0);
}

TEST_F(CountersTest, CliRefusesBadNamesAndWindowsBeforeSending) {
  Run({"inc", "2", "-k", "fine"});
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"inc", "1", "-k", "bad name"},
                                             {"inc", "1", "-k", ""},
                                             {"inc", "1", "-k", "x", "--window", "0"},
                                             {"inc", "1", "-k", "x", "--window", "010"},
                                             {"inc", "1", "-k", "x", "--window", "604801"},
                                             {"total", "-k", "a@b"},
                                             {"counters", "--top", "0x10"},
                                             {"reset", "bad name", "--yes"}}) {
    RunResult result = Run(args);
    EXPECT_EQ(result.exit_code, 2) << args[0] << " " << args[1] << "\n" << result.err;
    EXPECT_TRUE(result.err.starts_with("shardctl: error: ")) << result.err;
  }
  EXPECT_EQ(Run({"counters", "--json"}).out,
            "{\"counters\":[{\"counter\":\"fine\",\"total\":2}]}\n");
}

TEST_F(CountersTest, PerShardShowsEachShardsPart) {
  for (int value : {3, 4, 5, 7}) Run({"inc", std::to_string(value), "-k", "hot"});
  RunResult result = Run({"total", "-k", "hot", "--per-shard"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  // stdout is a pipe here: numbers only, no bars.
  EXPECT_EQ(result.out,
            "shard 0                      3\n"
            "shard 1                     11\n"
            "shard 2                      5\n"
            "total                       19\n");
  EXPECT_EQ(Body("/total?counter=hot&perShard=true"),
            R"({"total":19,"counter":"hot","shards":[{"shardId":0,"count":3},)"
            R"({"shardId":1,"count":11},{"shardId":2,"count":5}]})");
}

}  // namespace
}  // namespace shardctl::testing
