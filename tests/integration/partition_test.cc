// Partition (tests/integration/partition.h) cuts a server off: while cut, a
// connect to it times out instead of being refused, servers elsewhere still
// answer, and once healed it answers again.
#include "tests/integration/partition.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

// How long a connect to a cut server is given: its SYN is dropped, so it
// would otherwise retry for about two minutes.
constexpr auto kConnectBound = 1000ms;

// What a TCP connect to "host:port" comes to within `timeout`.
std::string ConnectOutcome(const std::string& host_port,
                           std::chrono::milliseconds timeout = kConnectBound) {
  const size_t colon = host_port.rfind(':');
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(std::stoi(host_port.substr(colon + 1))));
  ::inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &address.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int result = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  int error = result == 0 ? 0 : errno;
  if (error == EINPROGRESS) {
    pollfd writable{fd, POLLOUT, 0};
    if (::poll(&writable, 1, static_cast<int>(timeout.count())) == 0) {
      ::close(fd);
      return "timed out";
    }
    socklen_t size = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
  }
  ::close(fd);
  if (error == 0) return "connected";
  if (error == ECONNREFUSED) return "refused";
  return std::string("failed: ") + std::strerror(error);
}

// GET /healthz with a short bound: its status, or 0 without an answer.
int Health(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  httplib::Client client(host_port.substr(0, colon), std::stoi(host_port.substr(colon + 1)));
  client.set_connection_timeout(kConnectBound);
  client.set_read_timeout(kConnectBound);
  httplib::Result result = client.Get("/healthz");
  return result ? result->status : 0;
}

// A single in-memory shard listening on `bind`, and its "host:port".
struct Shard {
  explicit Shard(const std::string& bind)
      : process({"serve", "--role", "shard", "--shard-id", "0", "--bind", bind, "--port", "0",
                 "--in-memory", "--threads", "1"}) {
    auto listeners = process.WaitForListeners(1);
    EXPECT_EQ(listeners.size(), 1u) << process.Stderr();
    if (!listeners.empty()) address = listeners.begin()->second;
  }
  ServerProcess process;
  std::string address;
};

class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(Partition::Available(&why)) << why;
  }
};

TEST_F(PartitionTest, CutPortTimesOutWhileOthersAnswerAndAnswersAgainOnceHealed) {
  Shard cut_off("127.0.0.13");
  Shard same_address("127.0.0.13");
  Shard other_address("127.0.0.12");
  for (const Shard* shard : {&cut_off, &same_address, &other_address}) {
    ASSERT_EQ(Health(shard->address), 200) << shard->address;
  }

  Partition partition(cut_off.address);
  ASSERT_TRUE(partition.cut());
  EXPECT_EQ(ConnectOutcome(cut_off.address), "timed out");
  EXPECT_EQ(Health(cut_off.address), 0);
  EXPECT_EQ(Health(same_address.address), 200);
  EXPECT_EQ(Health(other_address.address), 200);

  partition.Heal();
  EXPECT_FALSE(partition.cut());
  EXPECT_EQ(ConnectOutcome(cut_off.address), "connected");
  EXPECT_EQ(Health(cut_off.address), 200);
}

// A whole address cuts every port of it, for every process on the machine:
// this one is used by no other test, which may run meanwhile (ctest -j).
TEST_F(PartitionTest, CutAddressTimesOutOnEveryPortAndEndsWithThePartition) {
  Shard first("127.0.0.213");
  Shard second("127.0.0.213");
  Shard other_address("127.0.0.12");
  {
    Partition partition("127.0.0.213");
    ASSERT_TRUE(partition.cut());
    EXPECT_EQ(ConnectOutcome(first.address), "timed out");
    EXPECT_EQ(ConnectOutcome(second.address), "timed out");
    EXPECT_EQ(Health(other_address.address), 200);
  }
  EXPECT_EQ(Health(first.address), 200);
  EXPECT_EQ(Health(second.address), 200);
}

TEST_F(PartitionTest, AddressThatIsNotIpv4FailsTheTest) {
  EXPECT_NONFATAL_FAILURE(Partition("localhost:80"), "is not A.B.C.D or A.B.C.D:PORT");
  EXPECT_NONFATAL_FAILURE(Partition("127.0.0.13:0"), "is not A.B.C.D or A.B.C.D:PORT");
}

}  // namespace
}  // namespace shardctl::testing
