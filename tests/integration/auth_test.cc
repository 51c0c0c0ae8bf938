// serve --token-file: every request but GET /healthz needs the bearer token,
// on the aggregator and on each shard; the aggregator sends it to its shards;
// the client commands take it from --token-file or SHARDCTL_TOKEN.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

constexpr char kToken[] = "s3cret-token_42";

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& contents) {
  std::string path = dir.path() + "/" + name;
  std::ofstream(path) << contents;
  return path;
}

std::string Request(const std::string& method, const std::string& path,
                    const std::string& extra_headers = "", const std::string& body = "") {
  return method + " " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra_headers +
         "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::string Bearer(const std::string& token) { return "Authorization: Bearer " + token + "\r\n"; }

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_->ready()); }

  TempDir dir_;
  // The file ends in a newline, as an editor leaves it: it is not part of the token.
  std::string token_file_ = WriteFile(dir_, "token", std::string(kToken) + "\n");
  std::unique_ptr<Cluster> cluster_ = std::make_unique<Cluster>(
      std::vector<std::string>{"--in-memory", "--token-file", token_file_});
};

TEST_F(AuthTest, RequestsWithoutTheTokenGet401AndChangeNothing) {
  const std::string increment_body = R"({"value":5})";
  for (const std::string& authorization :
       {std::string(), Bearer("wrong"), Bearer(std::string(kToken) + "x"), Bearer(""),
        "Authorization: Basic " + std::string(kToken) + "\r\n", Bearer(kToken) + Bearer(kToken)}) {
    std::string answer = SendRaw(cluster_->aggregator(),
                                 Request("POST", "/increment", authorization, increment_body));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 401")) << authorization << answer;
    EXPECT_NE(answer.find("WWW-Authenticate: Bearer\r\n"), std::string::npos) << answer;
    EXPECT_NE(answer.find("Content-Type: application/json"), std::string::npos) << answer;
    EXPECT_NE(answer.find(R"({"error":")"), std::string::npos) << answer;
  }
  EXPECT_TRUE(
      SendRaw(cluster_->aggregator(), Request("GET", "/total")).starts_with("HTTP/1.1 401"));
  EXPECT_TRUE(
      SendRaw(cluster_->aggregator(), Request("GET", "/counters")).starts_with("HTTP/1.1 401"));
  EXPECT_TRUE(
      SendRaw(cluster_->aggregator(), Request("POST", "/reset", "", R"({"counter":"default"})"))
          .starts_with("HTTP/1.1 401"));
  // Shards want it too.
  EXPECT_TRUE(SendRaw(cluster_->shard(2), Request("POST", "/increment", "", increment_body))
                  .starts_with("HTTP/1.1 401"));
  EXPECT_TRUE(SendRaw(cluster_->shard(2), Request("GET", "/count")).starts_with("HTTP/1.1 401"));

  std::string total = SendRaw(cluster_->aggregator(), Request("GET", "/total", Bearer(kToken)));
  EXPECT_TRUE(total.starts_with("HTTP/1.1 200")) << total;
  EXPECT_TRUE(total.ends_with(R"({"total":0})")) << total;
}

TEST_F(AuthTest, TheRightTokenIsServed) {
  std::string inc = SendRaw(cluster_->aggregator(),
                            Request("POST", "/increment", Bearer(kToken), R"({"value":5})"));
  EXPECT_TRUE(inc.starts_with("HTTP/1.1 200")) << inc;
  EXPECT_TRUE(inc.ends_with(R"({"success":true,"shardId":2,"count":5})")) << inc;
  std::string count = SendRaw(cluster_->shard(2), Request("GET", "/count", Bearer(kToken)));
  EXPECT_TRUE(count.ends_with(R"({"shardId":2,"count":5})")) << count;
}

TEST_F(AuthTest, HealthzNeedsNoToken) {
  for (const std::string& address : {cluster_->aggregator(), cluster_->shard(0)}) {
    std::string answer = SendRaw(address, Request("GET", "/healthz"));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
    EXPECT_TRUE(answer.ends_with(R"({"status":"ok"})")) << answer;
  }
}

TEST_F(AuthTest, CliTakesTheTokenFromTheEnvironmentOrAFile) {
  RunResult without = cluster_->Run({"inc", "5"});
  EXPECT_EQ(without.exit_code, 1);
  EXPECT_NE(without.err.find("(401)"), std::string::npos) << without.err;
  EXPECT_NE(without.err.find("--token-file"), std::string::npos) << without.err;
  EXPECT_EQ(without.out, "");

  RunResult from_env =
      RunShardctl({"inc", "5", "--url", cluster_->url()}, {{"SHARDCTL_TOKEN", kToken}});
  EXPECT_EQ(from_env.exit_code, 0) << from_env.err;
  EXPECT_EQ(from_env.out, "shard 2: count 5\n");

  RunResult from_file = cluster_->Run({"total", "--token-file", token_file_});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(from_file.out, "5\n");

  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"counters"}, {"reset", "default", "--yes"}}) {
    std::vector<std::string> args = command;
    args.push_back("--token-file");
    args.push_back(token_file_);
    RunResult result = cluster_->Run(args);
    EXPECT_EQ(result.exit_code, 0) << command[0] << ": " << result.err;
  }

  // The flag wins over the environment.
  RunResult flag_first =
      RunShardctl({"total", "--url", cluster_->url(), "--token-file", token_file_},
                  {{"SHARDCTL_TOKEN", "wrong"}});
  EXPECT_EQ(flag_first.exit_code, 0) << flag_first.err;

  RunResult wrong = RunShardctl({"total", "--url", cluster_->url()}, {{"SHARDCTL_TOKEN", "wrong"}});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("token is wrong"), std::string::npos) << wrong.err;
}

TEST_F(AuthTest, CliRefusesAnUnreadableOrEmptyTokenFile) {
  std::string empty = WriteFile(dir_, "empty", "\n");
  const std::vector<std::string> bad = {dir_.path() + "/missing", empty, dir_.path()};
  for (const std::string& path : bad) {
    RunResult result = cluster_->Run({"total", "--token-file", path});
    EXPECT_EQ(result.exit_code, 2) << path;
    EXPECT_TRUE(result.err.starts_with("shardctl: error: ")) << result.err;
    EXPECT_NE(result.err.find(path), std::string::npos) << result.err;
  }
  RunResult empty_env = RunShardctl({"total", "--url", cluster_->url()}, {{"SHARDCTL_TOKEN", ""}});
  EXPECT_EQ(empty_env.exit_code, 2) << empty_env.err;
}

TEST(ServeTokenFileTest, UnreadableOrEmptyTokenFileRefusesToStart) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir.path() + "/missing", "No such file"},
      {WriteFile(dir, "empty", ""), "is empty"},
      {WriteFile(dir, "blank", " \n\n"), "is empty"},
      {WriteFile(dir, "two-lines", "abc\ndef\n"), "one line"},
  };
  for (const auto& [path, expected] : cases) {
    RunResult result = RunShardctl(
        {"serve", "--in-memory", "--port", "0", "--shard-base-port", "0", "--token-file", path});
    EXPECT_EQ(result.exit_code, 5) << path;
    EXPECT_NE(result.err.find(path), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(expected), std::string::npos) << result.err;
    EXPECT_EQ(result.out.find("listening"), std::string::npos) << result.out;
  }
}

// Shards and the aggregator in separate processes, all with the token: the
// aggregator's calls to its shards carry it.
TEST(SeparateRolesTokenTest, AggregatorSendsTheTokenToItsShards) {
  TempDir dir;
  std::string token_file = WriteFile(dir, "token", kToken);
  std::vector<std::unique_ptr<ServerProcess>> shards;
  std::vector<std::string> shard_addresses;
  std::vector<std::string> aggregator_args = {"serve", "--role", "aggregator", "--port", "0"};
  for (int id = 0; id < 3; ++id) {
    shards.push_back(std::make_unique<ServerProcess>(std::vector<std::string>{
        "serve", "--role", "shard", "--shard-id", std::to_string(id), "--shards", "3", "--port",
        "0", "--in-memory", "--token-file", token_file}));
    auto listeners = shards.back()->WaitForListeners(1);
    ASSERT_EQ(listeners.size(), 1u) << shards.back()->Stderr();
    shard_addresses.push_back(listeners["shard " + std::to_string(id)]);
    aggregator_args.push_back("--shard");
    aggregator_args.push_back("http://" + shard_addresses.back());
  }
  // One aggregator with the token, one without: the shards refuse the second.
  std::vector<std::string> with_token = aggregator_args;
  with_token.push_back("--token-file");
  with_token.push_back(token_file);
  ServerProcess aggregator(with_token);
  auto listeners = aggregator.WaitForListeners(1);
  ASSERT_EQ(listeners.size(), 1u) << aggregator.Stderr();
  std::string url = "http://" + listeners["aggregator"];
  ServerProcess tokenless(aggregator_args);
  auto tokenless_listeners = tokenless.WaitForListeners(1);
  ASSERT_EQ(tokenless_listeners.size(), 1u) << tokenless.Stderr();

  const std::map<std::string, std::string> env = {{"SHARDCTL_TOKEN", kToken}};
  for (int value : {1, 2, 3}) {
    RunResult inc = RunShardctl({"inc", std::to_string(value), "--url", url}, env);
    EXPECT_EQ(inc.exit_code, 0) << inc.err;
  }
  RunResult total = RunShardctl({"total", "--url", url, "--per-shard"}, env);
  EXPECT_EQ(total.exit_code, 0) << total.err;
  EXPECT_NE(total.out.find("total                        6"), std::string::npos) << total.out;

  RunResult refused =
      RunShardctl({"total", "--url", "http://" + tokenless_listeners["aggregator"]}, env);
  EXPECT_EQ(refused.exit_code, 4) << refused.err;
  EXPECT_NE(refused.err.find("401"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace shardctl::testing
