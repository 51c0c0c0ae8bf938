// EtcdServer: a real single-member etcd (Debian's etcd-server 3.4, binary
// `etcd`) for the integration tests, on 127.0.0.1 with free client and peer
// ports and a data directory of its own; ready once constructed, stopped
// when destroyed. Not thread-safe: each test owns its etcd.
#ifndef SHARDCTL_TESTS_INTEGRATION_ETCD_HARNESS_H_
#define SHARDCTL_TESTS_INTEGRATION_ETCD_HARNESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {

class EtcdServer {
 public:
  // Starts etcd and waits until it answers GET /health. Fails the test
  // (ADD_FAILURE, with etcd's log) if it does not within 30 s.
  EtcdServer();
  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // True while etcd runs and has answered.
  bool ready() const { return pid_ > 0 && ready_; }
  // "http://127.0.0.1:<client port>"
  std::string url() const { return "http://" + host_port(); }
  std::string host_port() const { return "127.0.0.1:" + std::to_string(client_port_); }

  // Stops etcd: SIGTERM, then SIGKILL if it still runs after 5 s.
  void Stop();
  // Stops etcd if it runs, then starts it again on the same ports and data
  // directory (keys, revisions and leases survive). Returns ready().
  bool Restart();
  // Sends `signal_number` to etcd (SIGSTOP and SIGCONT for a hung member).
  void Signal(int signal_number);
  // What etcd wrote to stdout and stderr.
  std::string Log() const;

 private:
  bool Start();

  TempDir dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  pid_t pid_ = -1;
  bool ready_ = false;
};

// A test with its own etcd and cluster nodes, each node n on its own
// loopback address 127.0.0.1n with a data directory of its own.
class EtcdClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd_.ready()) << etcd_.Log(); }

  // Runs `shardctl args... --etcd <this etcd>` to completion.
  RunResult Shardctl(std::vector<std::string> args);
  // Starts (or restarts, on the same port and data) node `n` as "n<n>", with
  // a 2 s lease; returns once it has joined.
  void StartNode(int n);
  // Makes a cluster of `shards` shards (shardctl cluster init).
  void Init(int shards);
  // Starts an aggregator that follows the cluster, on a free port of
  // 127.0.0.1 (aggregator_address_); returns once it listens.
  void StartAggregator();

  EtcdServer etcd_;
  std::vector<std::string> node_args_;  // more options for every node StartNode starts
  std::map<int, std::unique_ptr<TempDir>> data_;
  std::map<int, std::unique_ptr<ServerProcess>> nodes_;
  std::map<int, std::string> addresses_;  // host:port
  std::map<int, std::string> ports_;
  std::unique_ptr<ServerProcess> aggregator_;
  std::string aggregator_address_;  // host:port
};

}  // namespace shardctl::testing

#endif  // SHARDCTL_TESTS_INTEGRATION_ETCD_HARNESS_H_
