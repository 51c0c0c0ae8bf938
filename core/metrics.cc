#include "core/metrics.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include <fmt/format.h>

namespace shardctl::core {
namespace {

constexpr double kMillionths = 1e6;

// A value as the text format writes it: integers plainly, +Inf and NaN by name.
std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

std::string FormatLabels(const Labels& labels, const char* extra_name = nullptr,
                         const std::string& extra_value = "") {
  if (labels.empty() && extra_name == nullptr) return "";
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    if (out.size() > 1) out += ',';
    out += fmt::format("{}=\"{}\"", name, EscapeLabelValue(value));
  }
  if (extra_name != nullptr) {
    if (out.size() > 1) out += ',';
    out += fmt::format("{}=\"{}\"", extra_name, extra_value);
  }
  return out + "}";
}

const char* TypeName(Registry::Type type) {
  switch (type) {
    case Registry::Type::kCounter: return "counter";
    case Registry::Type::kGauge: return "gauge";
    case Registry::Type::kHistogram: return "histogram";
  }
  return "untyped";
}

// Collects the samples of one scrape by family.
class Gathered final : public MetricSink {
 public:
  void Sample(const std::string& family, const Labels& labels, double value) override {
    lines_[family] += fmt::format("{}{} {}\n", family, FormatLabels(labels), FormatValue(value));
  }
  void Histogram(const std::string& family, const Labels& labels,
                 const Histogram::Snapshot& snapshot) override {
    std::string& out = lines_[family];
    for (size_t i = 0; i < snapshot.cumulative.size(); ++i) {
      std::string le = i < snapshot.bounds.size() ? FormatValue(snapshot.bounds[i]) : "+Inf";
      fmt::format_to(std::back_inserter(out), "{}_bucket{} {}\n", family,
                     FormatLabels(labels, "le", le), snapshot.cumulative[i]);
    }
    fmt::format_to(std::back_inserter(out), "{}_sum{} {}\n", family, FormatLabels(labels),
                   FormatValue(snapshot.sum));
    fmt::format_to(std::back_inserter(out), "{}_count{} {}\n", family, FormatLabels(labels),
                   snapshot.cumulative.empty() ? 0 : snapshot.cumulative.back());
  }
  const std::string* Lines(const std::string& family) const {
    auto found = lines_.find(family);
    return found == lines_.end() ? nullptr : &found->second;
  }

 private:
  std::map<std::string, std::string> lines_;
};

}  // namespace

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double value) {
  size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_millionths_.fetch_add(std::llround(value * kMillionths), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot{bounds_, {}, 0};
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(running);
  }
  snapshot.sum = static_cast<double>(sum_millionths_.load(std::memory_order_relaxed)) / kMillionths;
  return snapshot;
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
}

std::vector<double> DiskBuckets() {
  std::vector<double> bounds = {0.0001, 0.0005};
  for (double bound = 0.001; bound < 9; bound *= 2) bounds.push_back(bound);
  return bounds;
}

void Registry::Declare(const std::string& name, Type type, const std::string& help) {
  std::lock_guard lock(mutex_);
  for (const Family& family : families_) {
    if (family.name == name) return;
  }
  families_.push_back({name, type, help});
}

Counter& Registry::AddCounter(const std::string& name, const std::string& help, Labels labels) {
  Declare(name, Type::kCounter, help);
  std::lock_guard lock(mutex_);
  auto& added = counters_.emplace_back(std::piecewise_construct, std::forward_as_tuple(std::move(labels)),
                                       std::forward_as_tuple(std::piecewise_construct,
                                                             std::forward_as_tuple(name),
                                                             std::forward_as_tuple()));
  return added.second.second;
}

Histogram& Registry::AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> bounds, Labels labels) {
  Declare(name, Type::kHistogram, help);
  std::lock_guard lock(mutex_);
  auto& added = histograms_.emplace_back(
      std::piecewise_construct, std::forward_as_tuple(std::move(labels)),
      std::forward_as_tuple(std::piecewise_construct, std::forward_as_tuple(name),
                            std::forward_as_tuple(std::move(bounds))));
  return added.second.second;
}

void Registry::AddCollector(std::function<void(MetricSink&)> collect) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::Render() const {
  std::vector<Family> families;
  std::vector<std::function<void(MetricSink&)>> collectors;
  Gathered gathered;
  {
    std::lock_guard lock(mutex_);
    families = families_;
    collectors = collectors_;
    for (const auto& [labels, named] : counters_) {
      gathered.Sample(named.first, labels, static_cast<double>(named.second.value()));
    }
    for (const auto& [labels, named] : histograms_) {
      gathered.Histogram(named.first, labels, named.second.Read());
    }
  }
  // Outside the lock: a collector may take its own locks.
  for (const auto& collect : collectors) collect(gathered);
  std::string out;
  for (const Family& family : families) {
    const std::string* lines = gathered.Lines(family.name);
    if (lines == nullptr) continue;
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n{}", family.name,
                   family.help, family.name, TypeName(family.type), *lines);
  }
  return out;
}

}  // namespace shardctl::core
