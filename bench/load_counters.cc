// bench_load_counters: posts one increment to each of N distinct counters
// through a running shardctl aggregator, over several keep-alive connections.
// Counter i is "c:%07d" and gets i % 1000 + 1. With WINDOWS (window lengths in
// seconds, comma-separated: "60,90"), increment i goes instead to the windowed
// counter "w:%07d" of number i / k with the window WINDOWS[i % k] (k lengths):
// N live windows over N / k names.
// Usage: bench_load_counters HOST PORT COUNT [CONNECTIONS [WINDOWS]]
// A benchmark helper, not part of shardctl.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

int main(int argc, char** argv) {
  if (argc < 4) {
    fmt::print(stderr, "usage: {} HOST PORT COUNT [CONNECTIONS [WINDOWS]]\n", argv[0]);
    return 2;
  }
  const std::string host = argv[1];
  const int port = std::atoi(argv[2]);
  const long count = std::atol(argv[3]);
  const int connections = argc > 4 ? std::atoi(argv[4]) : 8;
  std::vector<long> windows;
  if (argc > 5) {
    std::istringstream list(argv[5]);
    for (std::string item; std::getline(list, item, ',');) {
      long window = std::atol(item.c_str());
      if (window <= 0) {
        fmt::print(stderr, "{}: bad window length \"{}\"\n", argv[0], item);
        return 2;
      }
      windows.push_back(window);
    }
  }
  const long lengths = static_cast<long>(windows.size());

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
        std::string body =
            lengths == 0
                ? fmt::format(R"({{"value":{},"counter":"c:{:07}"}})", i % 1000 + 1, i)
                : fmt::format(R"({{"value":{},"counter":"w:{:07}","window":{}}})", i % 1000 + 1,
                              i / lengths, windows[static_cast<size_t>(i % lengths)]);
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
