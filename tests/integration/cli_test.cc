// The shardctl binary as scripts use it: outputs, exit codes, strict values.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.ready()); }

  RunResult Run(const std::vector<std::string>& args) { return cluster_.Run(args); }
  std::string Total() { return Run({"total"}).out; }

  Cluster cluster_;
};

TEST_F(CliTest, IncPrintsTheShardAndItsCount) {
  RunResult result = Run({"inc", "5"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "shard 2: count 5\n");
  EXPECT_EQ(result.err, "");
}

TEST_F(CliTest, QuietIncPrintsNothingAndCountsAllTheSame) {
  RunResult result = Run({"inc", "--quiet", "5"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, "");
  EXPECT_EQ(Total(), "5\n");
}

TEST_F(CliTest, ColourOnlyOnATerminalAndNeverWithNoColor) {
  // script(1) gives the command a terminal for stdout.
  std::string status = std::string(SHARDCTL_BINARY) + " status --url " + cluster_.url();
  RunResult on_terminal = RunCommandOnTerminal(status, {});
  EXPECT_NE(on_terminal.out.find("\x1b[32mup"), std::string::npos) << on_terminal.out;
  RunResult no_color = RunCommandOnTerminal(status, {{"NO_COLOR", "1"}});
  EXPECT_EQ(no_color.out.find("\x1b["), std::string::npos) << no_color.out;
  EXPECT_NE(no_color.out.find("up"), std::string::npos) << no_color.out;
  RunResult piped = Run({"status"});
  EXPECT_EQ(piped.out.find("\x1b["), std::string::npos) << piped.out;
}

TEST_F(CliTest, TotalPrintsABareInteger) {
  Run({"inc", "5"});
  Run({"inc", "-7"});
  RunResult result = Run({"total"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "-2\n");
}

TEST_F(CliTest, JsonPrintsTheServersAnswerAsItCame) {
  EXPECT_EQ(Run({"inc", "1", "--json"}).out, "{\"success\":true,\"shardId\":1,\"count\":1}\n");
  EXPECT_EQ(Run({"total", "--json"}).out, "{\"total\":1}\n");
}

TEST_F(CliTest, UrlComesFromTheEnvironment) {
  RunResult result = RunShardctl({"inc", "4"}, {{"SHARDCTL_URL", cluster_.url()}});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(RunShardctl({"total"}, {{"SHARDCTL_URL", cluster_.url()}}).out, "4\n");
}

TEST_F(CliTest, BadValuesAreRefusedBeforeAnyRequest) {
  Run({"inc", "3"});
  for (const std::string value : {"abc", "1.5", "0x10", "010", "99999999999999999999",
                                  "-9223372036854775809", "+5", "", " 5", "1e3"}) {
    RunResult result = Run({"inc", value});
    EXPECT_EQ(result.exit_code, 2) << "'" << value << "'";
    EXPECT_TRUE(result.err.starts_with("shardctl: error: ")) << result.err;
    EXPECT_EQ(result.out, "");
  }
  EXPECT_EQ(Total(), "3\n");
  // Refused before any connection: an unreachable URL still gives a usage error.
  EXPECT_EQ(RunShardctl({"inc", "010", "--url", "http://127.0.0.1:1"}).exit_code, 2);
}

TEST_F(CliTest, ServerRefusalExits1) {
  ASSERT_EQ(Run({"inc", "9223372036854775807"}).exit_code, 0);
  RunResult result = Run({"inc", "1"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(result.err.starts_with("shardctl: error: the server refused")) << result.err;
}

TEST_F(CliTest, ServerFailureExits4) {
  ASSERT_EQ(Run({"inc", "9223372036854775807"}).exit_code, 0);
  ASSERT_EQ(Run({"inc", "2"}).exit_code, 0);
  RunResult result = Run({"total"});
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_EQ(result.out, "");
  EXPECT_NE(result.err.find("does not fit"), std::string::npos) << result.err;
}

TEST(CliNoServerTest, UnreachableAggregatorExits3WithAHint) {
  int port = 0;
  {
    HeldPort free_port;  // released at once: nothing listens there afterwards
    port = free_port.port();
  }
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  RunResult result = RunShardctl({"total", "--url", url, "--timeout", "2"});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(result.err.find("cannot connect to " + url), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("SHARDCTL_URL"), std::string::npos) << result.err;
}

TEST(CliNoServerTest, UsageErrorsExit2) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"nonsense"},
      {"inc"},
      {"inc", "1", "2"},
      {"total", "--no-such-option"},
      {"total", "--timeout", "-1"},
      {"total", "--url", "ftp://127.0.0.1:4000"},
  };
  for (const auto& args : bad) {
    RunResult result = RunShardctl(args);
    EXPECT_EQ(result.exit_code, 2) << (args.empty() ? "(none)" : args[0]) << "\n" << result.err;
    EXPECT_TRUE(result.err.starts_with("shardctl: error: ")) << result.err;
  }
}

TEST(CliNoServerTest, HelpAndVersionExit0) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"serve", "--help"}, {"inc", "--help"}, {"total", "--help"}}) {
    RunResult result = RunShardctl(args);
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_NE(result.out.find("Usage"), std::string::npos) << result.out;
  }
  RunResult version = RunShardctl({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_FALSE(version.out.empty());
}

}  // namespace
}  // namespace shardctl::testing
