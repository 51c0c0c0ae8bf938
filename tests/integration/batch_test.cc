// The batch form of POST /increment, {"values":[...]}, and `shardctl inc
// --stdin`, which streams lines into batches.
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

// Runs `shardctl args` with the file `input` as its stdin.
RunResult RunWithInput(const std::string& args, const std::string& input) {
  std::string command = SHARDCTL_BINARY;
  command.append(" ").append(args).append(" <").append(input);
  return RunCommand(command);
}

class BatchTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.ready()); }
  std::string WriteInput(const std::string& text) {
    std::string path = dir_.path() + "/input";
    std::ofstream(path) << text;
    return path;
  }
  Cluster cluster_;
  TempDir dir_;
};

TEST_F(BatchTest, BatchIsCountedAndAnsweredWithEachShardsShare) {
  HttpConnection http(cluster_.aggregator());
  Reply reply = http.Post("/increment", R"({"values":[1,2,3,4],"counter":"b"})");
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.body,
            R"({"success":true,"applied":4,"shards":[{"shardId":0,"applied":1,"count":3},)"
            R"({"shardId":1,"applied":2,"count":5},{"shardId":2,"applied":1,"count":2}],)"
            R"("counter":"b"})");
  EXPECT_EQ(http.Get("/total?counter=b").body, R"({"total":10,"counter":"b"})");
}

TEST_F(BatchTest, BadBatchIsRefusedWholeAndCountsNothing) {
  HttpConnection http(cluster_.aggregator());
  for (const char* body : {R"({"values":[1,2,"x",4]})", R"({"values":[1,1.5]})",
                           R"({"values":[]})", R"({"values":[1],"value":1})",
                           R"({"values":[9223372036854775807,9223372036854775807]})"}) {
    Reply reply = http.Post("/increment", body);
    EXPECT_TRUE(reply.status == 400 || reply.status == 422) << body << " " << reply.body;
  }
  EXPECT_NE(http.Post("/increment", R"({"values":[1,2,"x",4]})").body.find("values[2]"),
            std::string::npos);
  EXPECT_EQ(http.Get("/total").body, R"({"total":0})");
}

TEST_F(BatchTest, StdinLinesAreCountedInBatches) {
  std::string input;
  int64_t sum = 0;
  for (int i = -500; i < 25000; ++i) {
    input += std::to_string(i) + (i % 1000 == 0 ? "\n\n" : "\n");  // blank lines are skipped
    sum += i;
  }
  RunResult run = RunWithInput("inc --stdin -k loaded --url " + cluster_.url(), WriteInput(input));
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out, "counted 25500 values in 3 batches\n");
  EXPECT_EQ(cluster_.Run({"total", "-k", "loaded"}).out, std::to_string(sum) + "\n");

  RunResult json = RunWithInput("inc --stdin --json --url " + cluster_.url(), WriteInput("1\n2\n"));
  EXPECT_EQ(json.out, "{\"applied\":2,\"batches\":1}\n");
  RunResult quiet = RunWithInput("inc --stdin -q --url " + cluster_.url(), WriteInput("5"));
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(quiet.out, "");
  EXPECT_EQ(cluster_.Run({"total"}).out, "8\n");
}

TEST_F(BatchTest, BadLineIsReportedByNumberAndItsBatchIsNotSent) {
  RunResult run = RunWithInput("inc --stdin --url " + cluster_.url(), WriteInput("1\n2\n1.5\n4\n"));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.out.find("line 3: '1.5'"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("nothing from line 1 on was counted"), std::string::npos)
      << run.out;
  EXPECT_EQ(cluster_.Run({"total"}).out, "0\n");
}

TEST_F(BatchTest, StdinAndAValueTogetherAreAUsageError) {
  RunResult both = RunWithInput("inc 5 --stdin --url " + cluster_.url(), WriteInput("1\n"));
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.out.find("not both"), std::string::npos) << both.out;
  EXPECT_EQ(RunShardctl({"inc", "--url", cluster_.url()}).exit_code, 2);
}

}  // namespace
}  // namespace shardctl::testing
