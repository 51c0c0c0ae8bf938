// LatencyHistogram: request latencies recorded in constant time and bounded
// memory (about 60 KiB however long a run), with percentiles accurate to
// within 1%. Not thread-safe: each thread records into its own histogram and
// the histograms are merged once the threads are done.
#ifndef SHARDCTL_CMD_LATENCY_HISTOGRAM_H_
#define SHARDCTL_CMD_LATENCY_HISTOGRAM_H_

#include <chrono>
#include <cstdint>
#include <vector>

namespace shardctl::cmd {

class LatencyHistogram {
 public:
  LatencyHistogram();

  // Records one latency; a negative one counts as 0.
  void Record(std::chrono::nanoseconds latency);
  // Adds every latency recorded in `other`.
  void Merge(const LatencyHistogram& other);

  int64_t count() const { return count_; }
  // The largest latency recorded, exactly; 0 when none was.
  std::chrono::nanoseconds max() const { return std::chrono::nanoseconds(max_); }

  // The `percent` percentile (0 < percent <= 100) by nearest rank: the
  // smallest recorded latency that at least `percent`% of the latencies do
  // not exceed, so p50 of {1,2,3,4} is 2 and p99.9 of 1000 latencies is the
  // 999th smallest. Below 256 ns exact; above, at most 1/128 too high, and
  // never above max(). Returns 0 when nothing was recorded.
  std::chrono::nanoseconds Percentile(double percent) const;

 private:
  // Log-linear buckets, as in HdrHistogram: latencies below 256 ns have a
  // bucket each; above, every power of two is split into 128 buckets.
  static size_t BucketOf(uint64_t nanos);
  // The largest latency that falls into bucket `index`.
  static uint64_t HighestIn(size_t index);

  std::vector<int64_t> counts_;
  int64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_LATENCY_HISTOGRAM_H_
