// What counting one HTTP answer costs, with shardctl's hand-written metrics
// (core/metrics.h) and with prometheus-cpp (Debian's prometheus-cpp-dev), on
// one thread and on two threads counting into the same metrics:
//   shardctl        core::Counter::Add (the status code's count) and
//                   core::Histogram::Observe (the latency), as RouteStats::Count
//                   in net/http_server.cc does for every answer;
//   prometheus_cpp  prometheus::Counter::Increment on a Family<Counter> label set
//                   fetched once, and prometheus::Histogram::Observe with the same
//                   16 buckets (core::LatencyBuckets());
//   clock           one std::chrono::steady_clock::now(): the latency's second
//                   clock reading, which either library needs, listed apart.
// The latencies observed cycle through 4096 values drawn once (log-uniform,
// 20 us .. 20 ms, so that they fall into several buckets and the bucket search
// is not always the same branch), the same values for both libraries.
// Run by bench/metrics.sh, which relates the nanoseconds to an increment's CPU
// time; alone: build/bench/bench/bench_metrics_cost [--benchmark_* flags].
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "core/metrics.h"

namespace {

constexpr size_t kLatencies = 4096;  // a power of two: the index wraps with a mask

// Seconds, log-uniform between 20 us and 20 ms; the same on every run.
const std::vector<double>& Latencies() {
  static const std::vector<double> latencies = [] {
    std::mt19937_64 random(15);
    std::uniform_real_distribution<double> exponent(std::log(20e-6), std::log(20e-3));
    std::vector<double> values(kLatencies);
    for (double& value : values) value = std::exp(exponent(random));
    return values;
  }();
  return latencies;
}

// The metrics every thread of a benchmark counts into, made once: with two
// threads they contend for the same cache lines (and prometheus-cpp's mutex).
struct Shardctl {
  shardctl::core::Registry registry;
  shardctl::core::Counter& requests =
      registry.AddCounter("bench_requests_total", "Requests.", {{"route", "/increment"}, {"code", "200"}});
  shardctl::core::Histogram& latency =
      registry.AddHistogram("bench_request_duration_seconds", "Latency.",
                            shardctl::core::LatencyBuckets(), {{"route", "/increment"}});
};

struct PrometheusCpp {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests_family =
      prometheus::BuildCounter().Name("bench_requests_total").Help("Requests.").Register(*registry);
  prometheus::Family<prometheus::Histogram>& latency_family =
      prometheus::BuildHistogram()
          .Name("bench_request_duration_seconds")
          .Help("Latency.")
          .Register(*registry);
  prometheus::Counter& requests = requests_family.Add({{"route", "/increment"}, {"code", "200"}});
  prometheus::Histogram& latency =
      latency_family.Add({{"route", "/increment"}}, shardctl::core::LatencyBuckets());
};

Shardctl& ShardctlMetrics() {
  static Shardctl metrics;
  return metrics;
}

PrometheusCpp& PrometheusCppMetrics() {
  static PrometheusCpp metrics;
  return metrics;
}

void BM_shardctl(benchmark::State& state) {
  Shardctl& metrics = ShardctlMetrics();
  const std::vector<double>& latencies = Latencies();
  size_t i = static_cast<size_t>(state.thread_index()) * 997;  // threads observe different values
  for (auto _ : state) {
    metrics.requests.Add();
    metrics.latency.Observe(latencies[i++ & (kLatencies - 1)]);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_prometheus_cpp(benchmark::State& state) {
  PrometheusCpp& metrics = PrometheusCppMetrics();
  const std::vector<double>& latencies = Latencies();
  size_t i = static_cast<size_t>(state.thread_index()) * 997;
  for (auto _ : state) {
    metrics.requests.Increment();
    metrics.latency.Observe(latencies[i++ & (kLatencies - 1)]);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_clock(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(std::chrono::steady_clock::now());
  }
  state.SetItemsProcessed(state.iterations());
}

// Made before timing starts, so that the first run does not pay for them.
void Setup(const benchmark::State&) {
  Latencies();
  ShardctlMetrics();
  PrometheusCppMetrics();
}

BENCHMARK(BM_shardctl)->Setup(Setup)->Threads(1)->Threads(2);
BENCHMARK(BM_prometheus_cpp)->Setup(Setup)->Threads(1)->Threads(2);
BENCHMARK(BM_clock)->Threads(1);

}  // namespace

BENCHMARK_MAIN();
