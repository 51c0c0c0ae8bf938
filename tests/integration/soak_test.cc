// A bounded soak: three --role shard processes persisting with fsync
// everysec behind a --role aggregator; 32 clients mix keyed increments (each
// retried with its key until acknowledged, as `shardctl inc` does) and
// totals; in the middle one shard is killed with SIGKILL and started again.
// Afterwards the total equals the sum of acknowledged increments exactly, no
// request took longer than its bound, and the aggregator's memory stayed flat.
// SHARDCTL_SOAK_SECONDS sets the length (default 60).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Sanitized builds keep freed memory in quarantine (ASan) or shadow it
// (TSan), so their resident memory grows by design: "flat" is checked only in
// plain builds, where it means something.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr int kClients = 32;
constexpr int kShards = 3;
// No request may hang: each must end (answered, or timed out by the client's
// 5 s read timeout) within this. The aggregator's --shard-timeout is 1 s, so
// answers normally come far sooner; the margin is for loaded CI machines.
constexpr auto kRequestBound = 6s;

int64_t ResidentKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6));
  }
  return -1;
}

std::chrono::seconds SoakLength() {
  const char* text = std::getenv("SHARDCTL_SOAK_SECONDS");
  int seconds = text != nullptr ? std::atoi(text) : 60;
  return std::chrono::seconds(std::max(seconds, 5));
}

struct ClientStats {
  int64_t acknowledged_sum = 0;  // values of increments answered 200
  int64_t requests = 0;
  int64_t failures = 0;          // answers other than 200 (503, 504, none)
  int64_t unfinished = 0;        // increments never acknowledged (must be 0)
  std::chrono::milliseconds slowest{0};
};

TEST(SoakTest, ShardKilledAndRestartedUnderLoadLosesAndDoublesNothing) {
  const auto length = SoakLength();
  std::vector<std::unique_ptr<TempDir>> data(kShards);
  std::vector<std::unique_ptr<ServerProcess>> shards(kShards);
  std::vector<std::string> ports(kShards, "0");
  auto start_shard = [&](int id) {
    shards[id] = std::make_unique<ServerProcess>(std::vector<std::string>{
        "serve", "--role", "shard", "--shard-id", std::to_string(id), "--shards",
        std::to_string(kShards), "--port", ports[id], "--data-dir", data[id]->path(), "--fsync",
        "everysec"});
    auto listeners = shards[id]->WaitForListeners(1);
    ASSERT_EQ(listeners.size(), 1u) << shards[id]->Stderr();
    std::string address = listeners.begin()->second;
    ports[id] = address.substr(address.rfind(':') + 1);
  };
  std::vector<std::string> aggregator_args = {"serve", "--role", "aggregator", "--port", "0",
                                              "--shard-timeout", "1"};
  for (int id = 0; id < kShards; ++id) {
    data[id] = std::make_unique<TempDir>();
    start_shard(id);
    aggregator_args.push_back("--shard");
    aggregator_args.push_back("http://127.0.0.1:" + ports[id]);
  }
  ServerProcess aggregator(aggregator_args);
  auto listeners = aggregator.WaitForListeners(1);
  ASSERT_EQ(listeners.size(), 1u) << aggregator.Stderr();
  const std::string address = listeners["aggregator"];
  const std::string host = address.substr(0, address.rfind(':'));
  const int port = std::stoi(address.substr(address.rfind(':') + 1));

  std::atomic<bool> stop{false};
  std::vector<ClientStats> stats(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      ClientStats& mine = stats[c];
      httplib::Client http(host, port);
      http.set_tcp_nodelay(true);
      http.set_keep_alive(true);
      http.set_connection_timeout(5, 0);
      http.set_read_timeout(5, 0);
      std::mt19937 random(static_cast<unsigned>(c));
      auto timed = [&](auto request) {
        auto started = Clock::now();
        httplib::Result result = request();
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
        mine.slowest = std::max(mine.slowest, took);
        ++mine.requests;
        return result;
      };
      for (int64_t n = 0; !stop.load(); ++n) {
        if (random() % 5 == 0) {
          timed([&] { return http.Get("/total"); });
          continue;
        }
        // One logical increment: retried with its key until acknowledged.
        int64_t value = static_cast<int64_t>(random() % 100) + 1;
        std::string body = "{\"value\":" + std::to_string(value) + "}";
        httplib::Headers headers = {
            {"Idempotency-Key", "soak-" + std::to_string(c) + "-" + std::to_string(n)}};
        auto give_up = Clock::now() + 30s;
        bool acknowledged = false;
        while (!acknowledged && Clock::now() < give_up) {
          httplib::Result result =
              timed([&] { return http.Post("/increment", headers, body, "application/json"); });
          acknowledged = result && result->status == 200;
          if (!acknowledged) {
            ++mine.failures;
            std::this_thread::sleep_for(50ms);  // a client's backoff before its retry
          }
        }
        if (acknowledged) {
          mine.acknowledged_sum += value;
        } else {
          ++mine.unfinished;
        }
      }
    });
  }

  // Warm up, note the aggregator's memory, then the fault.
  std::this_thread::sleep_for(length / 4);
  const int64_t warm_kib = ResidentKib(aggregator.pid());
  shards[1]->Signal(SIGKILL);
  ASSERT_TRUE(shards[1]->WaitForExit(5s).has_value());
  std::this_thread::sleep_for(1s);  // the shard stays down a while under load
  start_shard(1);
  std::this_thread::sleep_for(length - length / 4 - 1s);
  stop = true;
  for (std::thread& client : clients) client.join();
  const int64_t end_kib = ResidentKib(aggregator.pid());

  ClientStats all;
  for (const ClientStats& s : stats) {
    all.acknowledged_sum += s.acknowledged_sum;
    all.requests += s.requests;
    all.failures += s.failures;
    all.unfinished += s.unfinished;
    all.slowest = std::max(all.slowest, s.slowest);
  }
  httplib::Client check(host, port);
  httplib::Result total = check.Get("/total");
  ASSERT_TRUE(total);
  ASSERT_EQ(total->status, 200) << total->body;
  EXPECT_EQ(total->body, "{\"total\":" + std::to_string(all.acknowledged_sum) + "}");
  EXPECT_EQ(all.unfinished, 0);
  EXPECT_LE(all.slowest, kRequestBound);
  EXPECT_GT(all.failures, 0) << "the killed shard should have refused some requests";
  // Flat: no growth with the number of requests (a leak of even 100 bytes
  // per request would show as tens of MiB here).
  if (!kSanitized) {
    EXPECT_LE(end_kib, warm_kib + 8 * 1024) << "warm " << warm_kib << " KiB, end " << end_kib;
  }
  std::printf(
      "soak: %lld s, %d clients, %lld requests, 1 shard killed (SIGKILL) and restarted, "
      "%lld refused or timed-out attempts retried, increments lost 0 (total %s = sum of "
      "acknowledged %lld), slowest answer %lld ms, aggregator RSS %lld -> %lld KiB\n",
      static_cast<long long>(length.count()), kClients, static_cast<long long>(all.requests),
      static_cast<long long>(all.failures), total->body.c_str(),
      static_cast<long long>(all.acknowledged_sum), static_cast<long long>(all.slowest.count()),
      static_cast<long long>(warm_kib), static_cast<long long>(end_kib));
}

}  // namespace
}  // namespace shardctl::testing
