// `shardctl serve` against hostile clients: idle and half-sent connections
// that try to starve the workers, and a barrage of malformed requests that
// must change no count and leave the server serving.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A TCP connection to "host:port" that the test holds open; -1 if it failed.
class OpenSocket {
 public:
  explicit OpenSocket(const std::string& host_port) {
    size_t colon = host_port.rfind(':');
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(std::stoi(host_port.substr(colon + 1))));
    ::inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &address.sin_addr);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~OpenSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  OpenSocket(OpenSocket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  OpenSocket(const OpenSocket&) = delete;
  OpenSocket& operator=(const OpenSocket&) = delete;

  bool ok() const { return fd_ >= 0; }
  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

 private:
  int fd_ = -1;
};

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// 200 connections that send nothing or half a request must not keep another
// client waiting: each would hold a worker thread in a thread-per-connection
// server (64 by default), and the real client would queue behind them.
TEST(IdleConnectionsTest, TwoHundredIdleConnectionsDoNotStarveAClient) {
  Cluster cluster({"--in-memory"});
  ASSERT_TRUE(cluster.ready());
  constexpr int kIdle = 200;
  std::vector<OpenSocket> idle;
  for (int i = 0; i < kIdle; ++i) {
    idle.emplace_back(cluster.aggregator());
    ASSERT_TRUE(idle.back().ok()) << "connection " << i;
    // Half of them start a request and never finish it (slow loris).
    if (i % 2 == 1) {
      ASSERT_TRUE(idle.back().Send("POST /increment HTTP/1.1\r\nHost: x\r\n"));
    }
  }

  Clock::time_point start = Clock::now();
  RunResult inc = cluster.Run({"inc", "5"});
  double inc_seconds = SecondsSince(start);
  EXPECT_EQ(inc.exit_code, 0) << inc.err;
  EXPECT_EQ(inc.out, "shard 2: count 5\n");

  start = Clock::now();
  RunResult total = cluster.Run({"total"});
  double total_seconds = SecondsSince(start);
  EXPECT_EQ(total.exit_code, 0) << total.err;
  EXPECT_EQ(total.out, "5\n");

  std::printf("with %d idle connections held open: shardctl inc took %.3f s, total %.3f s\n",
              kIdle, inc_seconds, total_seconds);
  EXPECT_LT(inc_seconds, 2.0);
  EXPECT_LT(total_seconds, 2.0);
}

}  // namespace
}  // namespace shardctl::testing
