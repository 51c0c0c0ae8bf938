// The batch form of POST /increment, {"values":[...]}, and `shardctl inc
// --stdin`, which streams lines into batches.
#include <stdio.h>
#include <sys/wait.h>

#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

struct Piped {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `shardctl args` with the file `input` as its stdin.
Piped RunWithInput(const std::string& args, const std::string& input) {
  Piped result;
  std::string command = std::string(SHARDCTL_BINARY) + " " + args + " <" + input + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
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
  Piped run = RunWithInput("inc --stdin -k loaded --url " + cluster_.url(), WriteInput(input));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, "counted 25500 values in 3 batches\n");
  EXPECT_EQ(cluster_.Run({"total", "-k", "loaded"}).out, std::to_string(sum) + "\n");

  Piped json = RunWithInput("inc --stdin --json --url " + cluster_.url(), WriteInput("1\n2\n"));
  EXPECT_EQ(json.output, "{\"applied\":2,\"batches\":1}\n");
  Piped quiet = RunWithInput("inc --stdin -q --url " + cluster_.url(), WriteInput("5"));
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(quiet.output, "");
  EXPECT_EQ(cluster_.Run({"total"}).out, "8\n");
}

TEST_F(BatchTest, BadLineIsReportedByNumberAndItsBatchIsNotSent) {
  Piped run = RunWithInput("inc --stdin --url " + cluster_.url(), WriteInput("1\n2\n1.5\n4\n"));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.output.find("line 3: '1.5'"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("nothing from line 1 on was counted"), std::string::npos)
      << run.output;
  EXPECT_EQ(cluster_.Run({"total"}).out, "0\n");
}

TEST_F(BatchTest, StdinAndAValueTogetherAreAUsageError) {
  Piped both = RunWithInput("inc 5 --stdin --url " + cluster_.url(), WriteInput("1\n"));
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.output.find("not both"), std::string::npos) << both.output;
  EXPECT_EQ(RunShardctl({"inc", "--url", cluster_.url()}).exit_code, 2);
}

}  // namespace
}  // namespace shardctl::testing
