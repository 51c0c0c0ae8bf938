// Metrics in Prometheus's text exposition format (version 0.0.4): counters
// and histograms cheap enough to count every request (relaxed atomics, no
// lock, no allocation), values read only when scraped, and a Registry that
// renders them all, each family once with its HELP and TYPE. Thread-safe:
// counting from any thread; registering before serving, rendering any time.
#ifndef SHARDCTL_CORE_METRICS_H_
#define SHARDCTL_CORE_METRICS_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace shardctl::core {

// Label pairs, in the order they are written: {{"route", "/total"}, ...}.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A count that only goes up.
class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<uint64_t> value_{0};
};

// Observations counted into buckets by upper bound (seconds, say), with
// their sum kept in millionths so that it adds without a lock.
class Histogram {
 public:
  // REQUIRES: `bounds` ascending.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<int64_t> sum_millionths_{0};
};

// Seconds: 100 us .. 10 s, for request latencies.
std::vector<double> LatencyBuckets();
// Seconds: 100 us .. 8 s, for disk writes and fsyncs (etcd's wal_fsync
// buckets, 1 ms doubling to 8.192 s, with two below a millisecond).
std::vector<double> DiskBuckets();

// What a collector gives at scrape time.
class MetricSink {
 public:
  virtual void Sample(const std::string& family, const Labels& labels, double value) = 0;
  virtual void Histogram(const std::string& family, const Labels& labels,
                         const Histogram::Snapshot& snapshot) = 0;

 protected:
  ~MetricSink() = default;
};

class Registry {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // Declares a family: its samples are written under one HELP and TYPE, in
  // the order families were declared. Declaring one again changes nothing.
  void Declare(const std::string& name, Type type, const std::string& help);

  // A counter or histogram owned by the registry (kept until it goes), in
  // family `name` (declared here if it was not) with `labels`.
  Counter& AddCounter(const std::string& name, const std::string& help, Labels labels = {});
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds, Labels labels = {});
  // Calls `collect` at every scrape: for values kept elsewhere (a shard's
  // counters, the open connections) and label sets that change (the shards
  // a node holds). Its families must be declared.
  void AddCollector(std::function<void(MetricSink&)> collect);

  // Every family in the text format: "# HELP", "# TYPE", then its samples.
  std::string Render() const;

 private:
  struct Family {
    std::string name;
    Type type;
    std::string help;
  };
  mutable std::mutex mutex_;
  std::vector<Family> families_;
  std::deque<std::pair<Labels, std::pair<std::string, Counter>>> counters_;
  std::deque<std::pair<Labels, std::pair<std::string, Histogram>>> histograms_;
  std::vector<std::function<void(MetricSink&)>> collectors_;
};

// The Content-Type of Registry::Render()'s text.
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// A label value as the text format writes it: backslash, quote and newline escaped.
std::string EscapeLabelValue(const std::string& value);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_METRICS_H_
