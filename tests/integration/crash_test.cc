// A crash test in the spirit of Jepsen's counter check: clients increment
// concurrently and record what was acknowledged; the server is killed with
// SIGKILL at a random moment, several times in a row, and restarted. After
// every restart, sum(acknowledged) <= total <= sum(attempted) must hold.
#include <signal.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

constexpr int kRounds = 6;
constexpr int kClients = 6;

TEST(CrashTest, AcknowledgedIncrementsSurviveRepeatedKill9) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  TempDir data;
  int64_t acknowledged = 0;  // sum of increments answered 200
  int64_t attempted = 0;     // plus those whose outcome is unknown
  const std::vector<std::string> modes = {"everysec", "always", "no"};

  for (int round = 0; round < kRounds; ++round) {
    const std::string& mode = modes[round % modes.size()];
    ServerProcess serve({"serve", "--port", "0", "--shard-base-port", "0", "--data-dir",
                         data.path(), "--fsync", mode});
    auto listeners = serve.WaitForListeners(4);
    ASSERT_EQ(listeners.size(), 4u) << serve.Stderr();
    const std::string aggregator = listeners["aggregator"];

    // After a restart, nothing acknowledged is lost and nothing is invented.
    Reply total = HttpConnection(aggregator).Get("/total");
    ASSERT_EQ(total.status, 200) << total.body;
    int64_t recovered = std::stoll(total.body.substr(total.body.find(':') + 1));
    EXPECT_LE(acknowledged, recovered) << "round " << round << ", " << mode;
    EXPECT_LE(recovered, attempted) << "round " << round << ", " << mode;
    acknowledged = attempted = recovered;  // the outcome of the unknown ones is now known

    std::atomic<int64_t> round_acknowledged{0}, round_attempted{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        HttpConnection http(aggregator);
        for (int64_t value = 1 + c;; value += kClients) {
          round_attempted += value;
          Reply reply = http.Post("/increment", "{\"value\":" + std::to_string(value) + "}");
          if (reply.status != 200) return;  // the server is gone
          round_acknowledged += value;
        }
      });
    }
    // The crash comes at a random moment: a deliberate delay, not a wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + random() % 250));
    serve.Signal(SIGKILL);
    ASSERT_TRUE(serve.WaitForExit(5s).has_value());
    for (auto& client : clients) client.join();
    EXPECT_GT(round_acknowledged.load(), 0) << "no increment got through in round " << round;
    acknowledged += round_acknowledged;
    attempted += round_attempted;
  }

  ServerProcess last({"serve", "--port", "0", "--shard-base-port", "0", "--data-dir",
                      data.path()});
  auto listeners = last.WaitForListeners(4);
  ASSERT_EQ(listeners.size(), 4u) << last.Stderr();
  Reply total = HttpConnection(listeners["aggregator"]).Get("/total");
  int64_t recovered = std::stoll(total.body.substr(total.body.find(':') + 1));
  EXPECT_LE(acknowledged, recovered);
  EXPECT_LE(recovered, attempted);
}

}  // namespace
}  // namespace shardctl::testing
