// bench_load_counters: posts one increment to each of N distinct counters
// through a running shardctl aggregator, over several keep-alive connections.
// Usage: bench_load_counters HOST PORT COUNT [CONNECTIONS]
// A benchmark helper, not part of shardctl.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

int main(int argc, char** argv) {
  if (argc < 4) {
    fmt::print(stderr, "usage: {} HOST PORT COUNT [CONNECTIONS]\n", argv[0]);
    return 2;
  }
  const std::string host = argv[1];
  const int port = std::atoi(argv[2]);
  const long count = std::atol(argv[3]);
  const int connections = argc > 4 ? std::atoi(argv[4]) : 8;

  std::atomic<long> next{0};
  std::atomic<long> failures{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int c = 0; c < connections; ++c) {
    workers.emplace_back([&] {
      httplib::Client client(host, port);
      client.set_tcp_nodelay(true);
      client.set_keep_alive(true);
      for (long i = next++; i < count; i = next++) {
        std::string body = fmt::format(R"({{"value":{},"counter":"c:{:07}"}})", i % 1000 + 1, i);
        auto result = client.Post("/increment", body, "application/json");
        if (!result || result->status != 200) ++failures;
      }
    });
  }
  for (auto& worker : workers) worker.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("loaded {} counters in {:.1f} s ({:.0f}/s), {} failures\n", count, seconds,
             static_cast<double>(count) / seconds, failures.load());
  return failures.load() == 0 ? 0 : 1;
}
