#include "cmd/bench_report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace shardctl::cmd {
namespace {

// `value` to `decimals` places, so that JSON shows 0.482 rather than 0.48200000000000004.
double Rounded(double value, int decimals) {
  double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

double Milliseconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

double Seconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

std::string OpDescription(const BenchResult& result) {
  if (result.op != "inc") return fmt::format("{}: GET /total", result.op);
  if (result.batch == 1) return "inc: POST /increment, 1 increment per request";
  return fmt::format("inc: POST /increment, {} increments per request (batch)", result.batch);
}

}  // namespace

void BenchResult::Merge(const BenchResult& part) {
  requests += part.requests;
  ok += part.ok;
  increments += part.increments;
  sum += part.sum;
  for (const auto& [kind, tally] : part.errors) {
    ErrorTally& mine = errors[kind];
    if (mine.count == 0) mine.first_message = tally.first_message;
    mine.count += tally.count;
  }
  latency.Merge(part.latency);
}

std::string ErrorKindLabel(const std::string& kind) {
  if (kind.starts_with("http")) return "HTTP " + kind.substr(4);
  return kind;
}

double PerSecond(int64_t count, std::chrono::nanoseconds elapsed) {
  if (elapsed.count() <= 0) return 0;
  return static_cast<double>(count) / Seconds(elapsed);
}

std::string FormatBenchTable(const BenchResult& result) {
  std::string table;
  auto line = [&table](std::string_view name, const std::string& value) {
    table += fmt::format("{:<14}{}\n", name, value);
  };
  line("op", OpDescription(result));
  line("connections", fmt::format("{}", result.connections));
  line("requests", fmt::format("{} ({} ok, {} errors){}", result.requests, result.ok,
                               result.error_count(), result.interrupted ? ", interrupted" : ""));
  line("elapsed", fmt::format("{:.3f} s", Seconds(result.elapsed)));
  line("requests/s", fmt::format("{:.0f}", PerSecond(result.ok, result.elapsed)));
  if (result.op == "inc") {
    line("increments/s", fmt::format("{:.0f}", PerSecond(result.increments, result.elapsed)));
    line("added", fmt::format("{} (the sum of the acknowledged values)", result.sum));
  }
  if (result.latency.count() > 0) {
    const LatencyHistogram& latency = result.latency;
    line("latency", fmt::format("p50 {:.3f} ms  p99 {:.3f} ms  p99.9 {:.3f} ms  max {:.3f} ms",
                                Milliseconds(latency.Percentile(50)),
                                Milliseconds(latency.Percentile(99)),
                                Milliseconds(latency.Percentile(99.9)),
                                Milliseconds(latency.max())));
  } else {
    line("latency", "- (no request was answered 2xx)");
  }
  bool first = true;
  for (const auto& [kind, tally] : result.errors) {
    line(first ? "errors" : "", fmt::format("{} {}: {}", tally.count, ErrorKindLabel(kind),
                                            tally.first_message));
    first = false;
  }
  return table;
}

std::string FormatBenchJson(const BenchResult& result) {
  nlohmann::ordered_json json;
  json["op"] = result.op;
  json["connections"] = result.connections;
  json["batch"] = result.batch;
  json["requests"] = result.requests;
  json["ok"] = result.ok;
  json["errors"] = result.error_count();
  json["errorsByKind"] = nlohmann::ordered_json::object();
  for (const auto& [kind, tally] : result.errors) json["errorsByKind"][kind] = tally.count;
  json["increments"] = result.increments;
  json["sum"] = result.sum;
  json["seconds"] = Rounded(Seconds(result.elapsed), 3);
  json["requestsPerSecond"] = Rounded(PerSecond(result.ok, result.elapsed), 1);
  json["incrementsPerSecond"] = Rounded(PerSecond(result.increments, result.elapsed), 1);
  auto latency = [&](std::chrono::nanoseconds value) -> nlohmann::ordered_json {
    if (result.latency.count() == 0) return nullptr;
    return Rounded(Milliseconds(value), 3);
  };
  json["latencyMs"] = {{"p50", latency(result.latency.Percentile(50))},
                       {"p99", latency(result.latency.Percentile(99))},
                       {"p999", latency(result.latency.Percentile(99.9))},
                       {"max", latency(result.latency.max())}};
  json["interrupted"] = result.interrupted;
  return json.dump() + "\n";
}

std::string FormatProgress(int64_t done, int64_t total_requests, double elapsed_seconds,
                           double duration_seconds, double rate) {
  constexpr int kWidth = 20;
  double fraction = total_requests > 0 ? static_cast<double>(done) / static_cast<double>(total_requests)
                    : duration_seconds > 0 ? elapsed_seconds / duration_seconds
                                           : 0;
  int filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * kWidth);
  std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '-');
  std::string progress =
      total_requests > 0
          ? fmt::format("{:>9}/{} requests", done, total_requests)
          : fmt::format("{:>6.1f}/{:.1f} s {:>9} requests", elapsed_seconds, duration_seconds, done);
  return fmt::format("[{}] {}  {:.0f} req/s", bar, progress, rate);
}

}  // namespace shardctl::cmd
