// The batch forms of POST /increment, {"values":[...]} of one counter and
// {"increments":[...]} or COUNTER VALUE lines of many, and `shardctl inc
// --stdin`, which streams lines into batches.
#include <csignal>
#include <cstdint>
#include <fstream>
#include <map>
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

// POST /increment of COUNTER VALUE lines (text/plain) on a fresh connection,
// with `key` as its Idempotency-Key unless empty; returns the whole answer.
std::string PostLines(const std::string& host_port, const std::string& path,
                      const std::string& lines, const std::string& key = "") {
  std::string request =
      "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
      "Content-Type: text/plain\r\nContent-Length: " + std::to_string(lines.size()) + "\r\n";
  if (!key.empty()) request += "Idempotency-Key: \"" + key + "\"\r\n";
  return SendRaw(host_port, request + "\r\n" + lines);
}

TEST_F(BatchTest, ManyCountersInOneBatchAreCountedAndAnsweredPerShard) {
  HttpConnection http(cluster_.aggregator());
  Reply json = http.Post(
      "/increment",
      R"({"increments":[{"counter":"m:a","value":3},{"counter":"m:b","value":4},{"counter":"m:a","value":-2}]})");
  EXPECT_EQ(json.status, 200) << json.body;
  EXPECT_EQ(json.body, R"({"applied":3,"parts":[{"shardId":0,"applied":1},)"
                       R"({"shardId":1,"applied":2}]})");
  std::string lines = PostLines(cluster_.aggregator(), "/increment", "m:a 5\nm:c 6\n");
  EXPECT_NE(lines.find(" 200 "), std::string::npos) << lines;
  EXPECT_NE(lines.find(R"({"applied":2,"parts":[{"shardId":0,"applied":1},)"
                       R"({"shardId":2,"applied":1}]})"),
            std::string::npos)
      << lines;
  EXPECT_EQ(http.Get("/total?counter=m:a").body, R"({"total":6,"counter":"m:a"})");
  EXPECT_EQ(http.Get("/counters?prefix=m:").body,
            R"({"counters":[{"counter":"m:a","total":6},{"counter":"m:b","total":4},)"
            R"({"counter":"m:c","total":6}]})");
}

TEST_F(BatchTest, ABadItemIsNamedAndNothingOfTheBatchIsCounted) {
  HttpConnection http(cluster_.aggregator());
  Reply json =
      http.Post("/increment",
                R"({"increments":[{"counter":"m:a","value":3},{"counter":"m:a","value":"x"}]})");
  EXPECT_EQ(json.status, 400) << json.body;
  EXPECT_NE(json.body.find("increments[1]"), std::string::npos) << json.body;
  std::string lines = PostLines(cluster_.aggregator(), "/increment", "m:a 1\nm:b 2\nm:c 1.5\n");
  EXPECT_NE(lines.find(" 400 "), std::string::npos) << lines;
  EXPECT_NE(lines.find("line 3"), std::string::npos) << lines;
  // One counter's increments that leave int64 in a shard's share: refused whole.
  std::string overflow =
      PostLines(cluster_.aggregator(), "/increment", "m:a 3\nm:big 9223372036854775807\nm:big 1\n");
  EXPECT_NE(overflow.find(" 422 "), std::string::npos) << overflow;
  EXPECT_EQ(http.Get("/counters?prefix=m:").body, R"({"counters":[]})");
}

TEST_F(BatchTest, ARetriedBatchOfManyCountersWithItsKeyIsCountedOnce) {
  std::string lines;
  for (int i = 0; i < 300; ++i)
    lines += "r:" + std::to_string(i % 50) + " " + std::to_string(i) + "\n";
  const std::string first = PostLines(cluster_.aggregator(), "/increment", lines, "load-1");
  EXPECT_NE(first.find(" 200 "), std::string::npos) << first;
  const std::string retry = PostLines(cluster_.aggregator(), "/increment", lines, "load-1");
  EXPECT_NE(retry.find(" 200 "), std::string::npos) << retry;
  EXPECT_EQ(first.substr(first.find("\r\n\r\n")), retry.substr(retry.find("\r\n\r\n")));
  const std::string other = PostLines(cluster_.aggregator(), "/increment", "r:0 1\n", "load-1");
  EXPECT_EQ(other.find(" 200 "), std::string::npos) << other;
  int64_t expected = 0;
  for (int i = 0; i < 300; i += 50) expected += i;
  EXPECT_EQ(cluster_.Run({"total", "-k", "r:0"}).out, std::to_string(expected) + "\n");
}

TEST_F(BatchTest, StdinPairsAndBareValuesAreCountedExactly) {
  std::string input;
  std::map<std::string, int64_t> totals;
  for (int i = 0; i < 30000; ++i) {
    if (i % 7 == 0) {
      input += std::to_string(i) + "\n";  // a bare value: of -k mixed
      totals["mixed"] += i;
    } else {
      const std::string name = "p:" + std::to_string(i % 997);
      input += name + (i % 2 == 0 ? " " : " \t ") + std::to_string(i - 15000) + "\r\n";
      totals[name] += i - 15000;
    }
  }
  RunResult run = RunWithInput("inc --stdin -k mixed --url " + cluster_.url(), WriteInput(input));
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out.rfind("counted 30000 values in ", 0), 0u) << run.out;
  // Two through `total`; every one through the listing.
  for (const std::string name : {"mixed", "p:1"}) {
    EXPECT_EQ(cluster_.Run({"total", "-k", name}).out, std::to_string(totals[name]) + "\n");
  }
  HttpConnection http(cluster_.aggregator());
  std::string expected = R"({"counters":[)";
  bool first = true;
  for (const auto& [name, total] : totals) {
    if (name.rfind("p:", 0) != 0) continue;
    expected += (first ? "" : ",") + std::string(R"({"counter":")") + name + R"(","total":)" +
                std::to_string(total) + "}";
    first = false;
  }
  EXPECT_EQ(http.Get("/counters?prefix=p:&limit=10000").body, expected + "]}");
}

TEST_F(BatchTest, ABadPairLineIsNamedByNumberAndNothingOfItsBatchIsCounted) {
  std::string input;
  for (int i = 0; i < 20000; ++i) input += "q:" + std::to_string(i) + " 1\n";
  input += "q:x 1 2\n";  // line 20001
  RunResult run = RunWithInput("inc --stdin --url " + cluster_.url(), WriteInput(input));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.out.find("line 20001: "), std::string::npos) << run.out;
  const size_t from = run.out.find("nothing from line ");
  ASSERT_NE(from, std::string::npos) << run.out;
  const int64_t first_unsent = std::stoll(run.out.substr(from + 18));
  // Every line before the bad line's batch was counted, none from it on.
  HttpConnection http(cluster_.aggregator());
  for (int64_t line : {int64_t{1}, first_unsent - 1, first_unsent, int64_t{20000}}) {
    const std::string name = "q:" + std::to_string(line - 1);
    EXPECT_EQ(http.Get("/total?counter=" + name).body,
              R"({"total":)" + std::string(line < first_unsent ? "1" : "0") + R"(,"counter":")" +
                  name + "\"}")
        << line;
  }
  RunResult bad_name =
      RunWithInput("inc --stdin --url " + cluster_.url(), WriteInput("a 1\nb\"c 2\n"));
  EXPECT_EQ(bad_name.exit_code, 2);
  EXPECT_NE(bad_name.out.find("line 2: "), std::string::npos) << bad_name.out;
}

TEST(BatchRestartTest, CountsLoadedFromStdinSurviveARestart) {
  TempDir data;
  TempDir input_dir;
  const std::vector<std::string> args = {"serve", "--port",     "0",        "--shard-base-port",
                                         "0",     "--data-dir", data.path()};
  std::string input;
  for (int i = 0; i < 20000; ++i)
    input += "s:" + std::to_string(i) + " " + std::to_string(i % 13 - 6) + "\n";
  const std::string path = input_dir.path() + "/input";
  std::ofstream(path) << input;
  std::string expected_page;
  {
    ServerProcess serve(args);
    auto listeners = serve.WaitForListeners(4);
    ASSERT_EQ(listeners.size(), 4u) << serve.Stderr();
    RunResult run = RunWithInput("inc --stdin -q --url http://" + listeners["aggregator"], path);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    HttpConnection http(listeners["aggregator"]);
    expected_page = http.Get("/counters?prefix=s:&limit=10000&after=s:5").body;
    EXPECT_NE(expected_page.find(R"({"counter":"s:50","total":)"), std::string::npos);
    serve.Signal(SIGTERM);
    ASSERT_EQ(serve.WaitForExit(10s), 0) << serve.Stderr();
  }
  ServerProcess again(args);
  auto listeners = again.WaitForListeners(4);
  ASSERT_EQ(listeners.size(), 4u) << again.Stderr();
  HttpConnection http(listeners["aggregator"]);
  EXPECT_EQ(http.Get("/counters?prefix=s:&limit=10000&after=s:5").body, expected_page);
  EXPECT_EQ(http.Get("/total?counter=s:19999").body,
            R"({"total":)" + std::to_string(19999 % 13 - 6) + R"(,"counter":"s:19999"})");
}

TEST_F(BatchTest, StdinAndAValueTogetherAreAUsageError) {
  RunResult both = RunWithInput("inc 5 --stdin --url " + cluster_.url(), WriteInput("1\n"));
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.out.find("not both"), std::string::npos) << both.out;
  EXPECT_EQ(RunShardctl({"inc", "--url", cluster_.url()}).exit_code, 2);
}

}  // namespace
}  // namespace shardctl::testing
