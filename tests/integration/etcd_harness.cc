#include "tests/integration/etcd_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A port nobody listens on now (HeldPort closes it again).
int FreePort() { return HeldPort().port(); }

}  // namespace

EtcdServer::EtcdServer() : client_port_(FreePort()), peer_port_(FreePort()) {
  if (!Start()) ADD_FAILURE() << "etcd did not become ready; its log:\n" << Log();
}

EtcdServer::~EtcdServer() {
  if (::testing::Test::HasFailure()) {
    std::string log = Log();
    if (log.size() > 8000) log = "...\n" + log.substr(log.size() - 8000);
    std::fprintf(stderr, "--- log of etcd on %s ---\n%s\n", url().c_str(), log.c_str());
  }
  Stop();
}

bool EtcdServer::Start() {
  std::string client = url();
  std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  const std::pair<const char*, std::string> flags[] = {
      {"--name", "default"},
      {"--data-dir", dir_.path() + "/data"},
      {"--listen-client-urls", client},
      {"--advertise-client-urls", client},
      {"--listen-peer-urls", peer},
      {"--initial-advertise-peer-urls", peer},
      {"--initial-cluster", "default=" + peer},
  };
  std::vector<std::string> args = {"etcd"};
  for (const auto& [flag, value] : flags) {
    args.push_back(flag);
    args.push_back(value);
  }
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::string log_path = dir_.path() + "/etcd.log";
  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    // etcd dies with the test, even one that crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  // Ready once it answers /health: it has a leader and serves requests.
  HttpConnection connection(host_port());
  auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline) {
    Reply health = connection.Get("/health");
    if (health.status == 200 && health.body.find("true") != std::string::npos) {
      ready_ = true;
      return true;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // it exited: no use waiting
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(20ms);  // between health checks
  }
  return false;
}

void EtcdServer::Stop() {
  ready_ = false;
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  ::kill(pid_, SIGCONT);  // a stopped etcd handles SIGTERM only once it runs
  if (!Reap(pid_, 5s)) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
}

bool EtcdServer::Restart() {
  Stop();
  return Start();
}

void EtcdServer::Signal(int signal_number) {
  if (pid_ > 0) ::kill(pid_, signal_number);
}

std::string EtcdServer::Log() const {
  std::ifstream file(dir_.path() + "/etcd.log");
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

RunResult EtcdClusterTest::Shardctl(std::vector<std::string> args) {
  args.push_back("--etcd");
  args.push_back(etcd_.url());
  return RunShardctl(args);
}

void EtcdClusterTest::StartNode(int n) {
  if (!data_.count(n)) data_[n] = std::make_unique<TempDir>();
  const std::string bind = "127.0.0." + std::to_string(10 + n);
  std::string port = ports_.count(n) ? ports_[n] : "0";
  std::vector<std::string> args = {"serve",     "--etcd",           etcd_.url(),
                                    "--bind",    bind,               "--port",
                                    port,        "--node-id",        "n" + std::to_string(n),
                                    "--data-dir", data_[n]->path(), "--lease",
                                    "2"};
  args.insert(args.end(), node_args_.begin(), node_args_.end());
  nodes_[n] = std::make_unique<ServerProcess>(args);
  auto listeners = nodes_[n]->WaitForListeners(1, std::chrono::seconds(20));
  ASSERT_EQ(listeners.size(), 1u) << nodes_[n]->Stderr();
  addresses_[n] = listeners["node"];
  ports_[n] = addresses_[n].substr(addresses_[n].rfind(':') + 1);
}

void EtcdClusterTest::Init(int shards) {
  RunResult made = Shardctl({"cluster", "init", "--shards", std::to_string(shards)});
  ASSERT_EQ(made.exit_code, 0) << made.err;
}

void EtcdClusterTest::StartAggregator() {
  aggregator_ = std::make_unique<ServerProcess>(std::vector<std::string>{
      "serve", "--role", "aggregator", "--etcd", etcd_.url(), "--port", "0"});
  auto listeners = aggregator_->WaitForListeners(1, 20s);
  ASSERT_EQ(listeners.size(), 1u) << aggregator_->Stderr();
  aggregator_address_ = listeners["aggregator"];
}

}  // namespace shardctl::testing
