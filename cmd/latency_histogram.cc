#include "cmd/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace shardctl::cmd {
namespace {

constexpr int kSubBucketBits = 7;
constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;  // 128
constexpr uint64_t kExactBelow = 2 * kSubBuckets;                // 256
// Latencies of 2^k ns for k from 8 to 63 each take kSubBuckets buckets.
constexpr size_t kBucketCount = kExactBelow + (63 - kSubBucketBits) * kSubBuckets;

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

size_t LatencyHistogram::BucketOf(uint64_t nanos) {
  if (nanos < kExactBelow) return static_cast<size_t>(nanos);
  // nanos >> shift keeps its top 8 bits: 128 + which of the 128 sub-buckets.
  int shift = std::bit_width(nanos) - 1 - kSubBucketBits;  // >= 1
  uint64_t sub = (nanos >> shift) - kSubBuckets;
  return static_cast<size_t>(kExactBelow + (shift - 1) * kSubBuckets + sub);
}

uint64_t LatencyHistogram::HighestIn(size_t index) {
  if (index < kExactBelow) return index;
  size_t shift = (index - kExactBelow) / kSubBuckets + 1;
  uint64_t top = kSubBuckets + (index - kExactBelow) % kSubBuckets;
  return ((top + 1) << shift) - 1;
}

void LatencyHistogram::Record(std::chrono::nanoseconds latency) {
  uint64_t nanos = latency.count() > 0 ? static_cast<uint64_t>(latency.count()) : 0;
  ++counts_[BucketOf(nanos)];
  ++count_;
  max_ = std::max(max_, nanos);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

std::chrono::nanoseconds LatencyHistogram::Percentile(double percent) const {
  if (count_ == 0) return std::chrono::nanoseconds(0);
  // The rank in whole parts per million, so that 99.9% of 1000 is exactly
  // 999 and not 999.0000000000001 rounded up to 1000.
  auto ppm = static_cast<int64_t>(std::llround(std::clamp(percent, 0.0, 100.0) * 10'000));
  int64_t rank = std::max<int64_t>(1, (ppm * count_ + 999'999) / 1'000'000);
  int64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      return std::chrono::nanoseconds(static_cast<int64_t>(std::min(HighestIn(i), max_)));
    }
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(max_));
}

}  // namespace shardctl::cmd
