// serve as a daemon (--daemon, --pid-file, --log-file, SIGHUP), shardctl
// stop, the --config file and its precedence, and the suggestions for typos.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

// True while `pid` runs; a zombie (exited, not yet reaped) does not.
bool Alive(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(file, stat);
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// Waits until `path` holds `text`; false after 10 s.
bool WaitForFileToHold(const std::string& path, const std::string& text) {
  for (auto deadline = Clock::now() + 10s; Clock::now() < deadline;) {
    if (ReadFile(path).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(10ms);  // polling a file another process writes
  }
  return false;
}

class DaemonTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // A daemon a failed test left behind is not left running.
    std::ifstream file(pid_file_);
    pid_t pid = 0;
    if (file >> pid && pid > 0) ::kill(pid, SIGKILL);
  }

  RunResult StartDaemon(std::vector<std::string> extra = {}, const std::string& port = "0") {
    std::vector<std::string> args = {"serve", "--daemon", "--in-memory", "--port", port,
                                     "--shard-base-port", "0", "--pid-file", pid_file_,
                                     "--log-file", log_file_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunShardctl(args);
  }

  pid_t DaemonPid() {
    std::ifstream file(pid_file_);
    pid_t pid = 0;
    file >> pid;
    return pid;
  }

  TempDir dir_;
  std::string pid_file_ = dir_.path() + "/shardctl.pid";
  std::string log_file_ = dir_.path() + "/shardctl.log";
};

TEST_F(DaemonTest, StartsDetachedOnceReadyServesAndStopsCleanly) {
  RunResult started = StartDaemon();
  ASSERT_EQ(started.exit_code, 0) << started.err;
  // It returned only once every listener was ready, and says where they are.
  size_t at = started.out.find("aggregator listening on ");
  ASSERT_NE(at, std::string::npos) << started.out;
  std::string address = started.out.substr(at + 24);
  address = address.substr(0, address.find('\n'));
  HttpConnection http(address);
  EXPECT_EQ(http.Post("/increment", R"({"value":2})").status, 200);

  pid_t pid = DaemonPid();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(Alive(pid));
  EXPECT_EQ(::getsid(pid) == ::getsid(0), false);  // a session of its own: no terminal
  RunResult total = RunShardctl({"total", "--url", "http://" + address});
  EXPECT_EQ(total.out, "2\n");

  RunResult stopped = RunShardctl({"stop", "--pid-file", pid_file_});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(stopped.out, "stopped shardctl (pid " + std::to_string(pid) + ")\n");
  EXPECT_FALSE(Alive(pid));
  EXPECT_FALSE(std::filesystem::exists(pid_file_));
  EXPECT_NE(ReadFile(log_file_).find("received SIGTERM, stopping"), std::string::npos)
      << ReadFile(log_file_);

  RunResult again = RunShardctl({"stop", "--pid-file", pid_file_});
  EXPECT_EQ(again.exit_code, 6);
  EXPECT_NE(again.err.find("not running"), std::string::npos) << again.err;
  EXPECT_EQ(RunShardctl({"stop", "--quiet", "--pid-file", pid_file_}).err, "");
}

TEST_F(DaemonTest, SecondStartWithTheSamePidFileIsRefused) {
  ASSERT_EQ(StartDaemon().exit_code, 0);
  pid_t first = DaemonPid();
  RunResult second = StartDaemon();
  EXPECT_EQ(second.exit_code, 5);
  EXPECT_NE(second.err.find("already running as pid " + std::to_string(first)), std::string::npos)
      << second.err;
  EXPECT_EQ(DaemonPid(), first);
  EXPECT_EQ(RunShardctl({"stop", "--pid-file", pid_file_}).exit_code, 0);
}

TEST_F(DaemonTest, StalePidFileDoesNotStopAStart) {
  std::ofstream(pid_file_) << "999999999\n";
  ASSERT_EQ(StartDaemon().exit_code, 0);
  EXPECT_NE(DaemonPid(), 999999999);
  EXPECT_EQ(RunShardctl({"stop", "--pid-file", pid_file_}).exit_code, 0);
}

TEST_F(DaemonTest, DaemonThatCannotStartExitsNonZeroWithTheReasonAndNoPidFile) {
  HeldPort taken;
  RunResult failed = StartDaemon({}, std::to_string(taken.port()));
  EXPECT_EQ(failed.exit_code, 5);
  EXPECT_NE(failed.err.find("already in use"), std::string::npos) << failed.err;
  EXPECT_FALSE(std::filesystem::exists(pid_file_));
}

TEST_F(DaemonTest, UnwritableLogFileIsRefusedAtTheStart) {
  log_file_ = dir_.path() + "/no-such-dir/shardctl.log";
  RunResult failed = StartDaemon();
  EXPECT_EQ(failed.exit_code, 5);
  EXPECT_NE(failed.err.find(log_file_), std::string::npos) << failed.err;
}

TEST_F(DaemonTest, SighupReopensTheLogFileForLogrotate) {
  ASSERT_EQ(StartDaemon().exit_code, 0);
  std::string rotated = log_file_ + ".1";
  std::filesystem::rename(log_file_, rotated);
  ::kill(DaemonPid(), SIGHUP);
  ASSERT_TRUE(WaitForFileToHold(log_file_, "reopened the log file")) << ReadFile(rotated);
  EXPECT_EQ(RunShardctl({"stop", "--pid-file", pid_file_}).exit_code, 0);
  EXPECT_NE(ReadFile(log_file_).find("received SIGTERM"), std::string::npos);
  EXPECT_EQ(ReadFile(rotated).find("received SIGTERM"), std::string::npos);
}

TEST_F(DaemonTest, LogLinesCarryTimeAndLevelAndLogLevelFilters) {
  ServerProcess serve({"serve", "--in-memory", "--port", "0", "--shard-base-port", "0"});
  ASSERT_EQ(serve.WaitForListeners(4).size(), 4u);
  serve.Signal(SIGTERM);
  ASSERT_EQ(serve.WaitForExit(5s), 0);
  std::string log = serve.Stderr();
  // 2026-12-01T06:48:08.710Z info shardctl 0.1.0 ready (pid 29790, in memory)
  ASSERT_GE(log.size(), 30u) << log;
  EXPECT_EQ(log[4], '-');
  EXPECT_EQ(log.substr(23, 7), "Z info ") << log;
  EXPECT_NE(log.find(" ready (pid "), std::string::npos) << log;

  ServerProcess quiet({"serve", "--in-memory", "--port", "0", "--shard-base-port", "0",
                       "--log-level", "warning"});
  ASSERT_EQ(quiet.WaitForListeners(4).size(), 4u);
  quiet.Signal(SIGTERM);
  ASSERT_EQ(quiet.WaitForExit(5s), 0);
  EXPECT_EQ(quiet.Stderr(), "");
}

TEST_F(DaemonTest, AccessLogHasALinePerRequest) {
  ServerProcess serve({"serve", "--in-memory", "--port", "0", "--shard-base-port", "0",
                       "--access-log"});
  auto listeners = serve.WaitForListeners(4);
  ASSERT_EQ(listeners.size(), 4u);
  {
    HttpConnection http(listeners["aggregator"]);
    EXPECT_EQ(http.Post("/increment", R"({"value":1})").status, 200);
    EXPECT_EQ(http.Get("/total?counter=x").status, 200);
    EXPECT_EQ(http.Get("/nope").status, 404);
  }
  serve.Signal(SIGTERM);
  ASSERT_EQ(serve.WaitForExit(5s), 0);
  std::string log = serve.Stderr();
  EXPECT_NE(log.find(R"( info access 127.0.0.1:)"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("POST /increment" 200 38 )"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("GET /total" 200 )"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("GET /nope" 404 )"), std::string::npos) << log;
}

class ConfigTest : public ::testing::Test {
 protected:
  std::string WriteConfig(const std::string& text) {
    std::ofstream(path_) << text;
    return path_;
  }
  TempDir dir_;
  std::string path_ = dir_.path() + "/shardctl.toml";
};

TEST_F(ConfigTest, FileSetsServeOptionsAndTheCommandLineWins) {
  WriteConfig("# a test config\n[serve]\nshards = 2\nport = 0\nshard-base-port = 0\n"
              "in-memory = true\nrouting = \"round-robin\"\n");
  ServerProcess from_file({"serve", "--config", path_});
  auto listeners = from_file.WaitForListeners(3);
  ASSERT_EQ(listeners.size(), 3u) << from_file.Stderr();
  EXPECT_EQ(listeners.count("shard 2"), 0u);
  HttpConnection http(listeners["aggregator"]);
  EXPECT_NE(http.Get("/shards").body.find(R"("routing":"round-robin")"), std::string::npos);

  ServerProcess overridden({"serve", "--config", path_, "--shards", "4"});
  EXPECT_EQ(overridden.WaitForListeners(5).size(), 5u) << overridden.Stderr();
  ServerProcess before_serve({"--config", path_, "serve", "--routing", "value"});
  auto value_listeners = before_serve.WaitForListeners(3);
  ASSERT_EQ(value_listeners.size(), 3u) << before_serve.Stderr();
  HttpConnection value_http(value_listeners["aggregator"]);
  EXPECT_NE(value_http.Get("/shards").body.find(R"("routing":"value")"), std::string::npos);
}

TEST_F(ConfigTest, UnknownKeyBadValueAndMissingFileAreUsageErrors) {
  WriteConfig("[serve]\nshardz = 2\n");
  RunResult unknown = RunShardctl({"serve", "--config", path_});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no option 'serve.shardz'"), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("did you mean 'serve.shards'?"), std::string::npos) << unknown.err;

  WriteConfig("[serve]\nfsync = \"sometimes\"\n");
  RunResult bad = RunShardctl({"serve", "--config", path_});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("sometimes"), std::string::npos) << bad.err;

  RunResult missing = RunShardctl({"serve", "--config", dir_.path() + "/none.toml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("none.toml"), std::string::npos) << missing.err;
}

TEST(SuggestionTest, TyposGetADidYouMean) {
  RunResult subcommand = RunShardctl({"totl"});
  EXPECT_EQ(subcommand.exit_code, 2);
  EXPECT_NE(subcommand.err.find("unknown subcommand 'totl'; did you mean 'total'?"),
            std::string::npos)
      << subcommand.err;
  RunResult option = RunShardctl({"serve", "--shard-timout", "3"});
  EXPECT_EQ(option.exit_code, 2);
  EXPECT_NE(option.err.find("unknown option '--shard-timout'; did you mean '--shard-timeout'?"),
            std::string::npos)
      << option.err;
  RunResult nothing_close = RunShardctl({"frobnicate"});
  EXPECT_EQ(nothing_close.exit_code, 2);
  EXPECT_NE(nothing_close.err.find("the subcommands are serve, inc, total"), std::string::npos)
      << nothing_close.err;
}

}  // namespace
}  // namespace shardctl::testing
