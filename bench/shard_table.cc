// bench_shard_table: core::Shard alone, in process, at scale (no HTTP):
//   memory   COUNT counters c:0000000.. with one increment each (value i % 1000 + 1,
//            routed value mod SHARDS as serve does), resident bytes per counter; then
//            the same counters on every shard (a part on each); and the time of a rank
//            page (top 10, top 1000) and a name page (1000 after c:0500000) on one shard.
//   windows  NAMES names x WINDOWS window lengths, all ending at once; the longest wait
//            of an increment (of other counters) and of a read while they are dropped.
// Usage: bench_shard_table memory [COUNT] [SHARDS] | windows [NAMES] [WINDOWS]
// A benchmark helper, not part of shardctl.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/shard.h"

using shardctl::core::CounterRef;
using shardctl::core::IncrementRequest;
using shardctl::core::PageQuery;
using shardctl::core::RankQuery;
using shardctl::core::Shard;
using Clock = std::chrono::steady_clock;

namespace {

long RssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::atol(line.c_str() + 6);
  }
  return -1;
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

IncrementRequest Request(int64_t value, std::string name, int64_t window = 0) {
  IncrementRequest request;
  request.value = value;
  request.counter = CounterRef{std::move(name), window};
  return request;
}

template <typename F>
double MedianMs(F f, int runs = 7) {
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    f();
    times.push_back(Ms(Clock::now() - start));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int Memory(long count, int shards) {
  std::vector<std::unique_ptr<Shard>> held;
  for (int i = 0; i < shards; ++i) held.push_back(std::make_unique<Shard>(i));
  const long before = RssKib();
  auto start = Clock::now();
  for (long i = 0; i < count; ++i) {
    const int64_t value = i % 1000 + 1;
    if (!held[value % shards]->Increment(Request(value, fmt::format("c:{:07}", i))).ok()) return 1;
  }
  const double seconds = Ms(Clock::now() - start) / 1000;
  const long one = RssKib();
  fmt::print("{} counters, one part each on {} shards: {:.1f} bytes per counter ({} MiB), "
             "{:.0f} increments/s in one thread\n",
             count, shards, (one - before) * 1024.0 / static_cast<double>(count),
             (one - before) / 1024, static_cast<double>(count) / seconds);

  Shard& first = *held[1 % shards];
  RankQuery top10;
  top10.limit = 10;
  RankQuery top1000;
  top1000.limit = 1000;
  fmt::print("one shard ({} parts): rank top 10 {:.3f} ms, top 1000 {:.3f} ms, "
             "page of 1000 names after c:0500000 {:.3f} ms, first page {:.3f} ms\n",
             first.size(), MedianMs([&] { first.Rank(top10); }),
             MedianMs([&] { first.Rank(top1000); }),
             MedianMs([&] { first.ListPage(PageQuery{"", "c:0500000", 1000}); }),
             MedianMs([&] { first.ListPage(PageQuery{"", "", 1000}); }));

  // The same counters with a part on every shard.
  for (long i = 0; i < count; ++i) {
    const int64_t value = i % 1000 + 1;
    for (int s = 0; s < shards; ++s) {
      if (s == value % shards) continue;
      if (!held[s]->Increment(Request(value, fmt::format("c:{:07}", i))).ok()) return 1;
    }
  }
  const long all = RssKib();
  fmt::print("the same counters with a part on each of the {} shards: {:.1f} bytes per counter\n",
             shards, (all - before) * 1024.0 / static_cast<double>(count));

  // Increments of counters it holds, in random order: each moves one in its
  // shard's rank index.
  std::vector<std::string> names;
  std::mt19937 random(17);
  for (int i = 0; i < 1'000'000; ++i) names.push_back(fmt::format("c:{:07}", random() % count));
  auto updates_start = Clock::now();
  for (size_t i = 0; i < names.size(); ++i) {
    const int64_t value = static_cast<int64_t>(i % 60 + 1);
    if (!held[value % shards]->Increment(Request(value, names[i])).ok()) return 1;
  }
  fmt::print("then {} increments of random counters among them (parts it holds): {:.0f}/s in "
             "one thread\n",
             names.size(),
             static_cast<double>(names.size()) / (Ms(Clock::now() - updates_start) / 1000));
  return 0;
}

int Windows(long names, int lengths) {
  // Lengths 10, 20, 40, ... seconds: all of them divide `end`, so windows
  // counted a little before it all end at `end`, at once.
  std::vector<int64_t> windows;
  for (int w = 0; w < lengths; ++w) windows.push_back(int64_t{10} << w);
  const int64_t end = (int64_t{10} << lengths) * 100'000;
  std::atomic<int64_t> now{end - 5};
  Shard shard(0, [&] { return now.load(); });
  for (long n = 0; n < names; ++n) {
    std::string name = fmt::format("client:{:06}", n);
    for (int64_t window : windows) {
      if (!shard.Increment(Request(1, name, window)).ok()) return 1;
    }
  }
  for (int i = 0; i < 1000; ++i) (void)shard.Increment(Request(1, fmt::format("plain:{}", i)));
  const size_t live = shard.size();
  const long rss = RssKib();
  now = end;  // every window has just ended

  std::atomic<bool> done{false};
  std::atomic<bool> started{false};
  double worst_increment = 0;
  double worst_read = 0;
  long operations = 0;
  auto load_until_done = [&] {
    started = true;
    for (long i = 0; !done; ++i) {
      auto start = Clock::now();
      (void)shard.Increment(Request(1, fmt::format("plain:{}", i % 1000)));
      auto middle = Clock::now();
      (void)shard.Count(CounterRef{fmt::format("client:{:06}", i % names), 10});
      auto end = Clock::now();
      worst_increment = std::max(worst_increment, Ms(middle - start));
      worst_read = std::max(worst_read, Ms(end - middle));
      ++operations;
    }
  };
  // The same load for a while with nothing to drop: the waits that this
  // machine's scheduler alone causes.
  std::thread control(load_until_done);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  done = true;
  control.join();
  fmt::print("control, 500 ms of the same load with nothing to drop: {} increments and reads, "
             "the longest increment {:.2f} ms, the longest read {:.2f} ms\n",
             operations, worst_increment, worst_read);
  done = false;
  started = false;
  worst_increment = worst_read = 0;
  operations = 0;
  std::thread load(load_until_done);
  while (!started) std::this_thread::yield();
  auto start = Clock::now();
  const size_t dropped = shard.DropExpiredWindows();
  const double took = Ms(Clock::now() - start);
  done = true;
  load.join();
  fmt::print("{} live windows ({} names x {} lengths; {} MiB resident): dropped {} in {:.0f} ms; "
             "meanwhile {} increments and reads, the longest increment {:.2f} ms, "
             "the longest read {:.2f} ms\n",
             live - 1000, names, lengths, rss / 1024, dropped, took, operations, worst_increment,
             worst_read);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "memory";
  if (mode == "memory") {
    return Memory(argc > 2 ? std::atol(argv[2]) : 1'000'000, argc > 3 ? std::atoi(argv[3]) : 3);
  }
  if (mode == "windows") {
    return Windows(argc > 2 ? std::atol(argv[2]) : 100'000, argc > 3 ? std::atoi(argv[3]) : 10);
  }
  fmt::print(stderr, "usage: {} memory [COUNT] [SHARDS] | windows [NAMES] [WINDOWS]\n", argv[0]);
  return 2;
}
