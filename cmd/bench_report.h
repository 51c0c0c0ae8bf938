// What `shardctl bench` measured and how it prints it: a table for people,
// one JSON object for scripts. Pure functions; thread-safe.
#ifndef SHARDCTL_CMD_BENCH_REPORT_H_
#define SHARDCTL_CMD_BENCH_REPORT_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "cmd/latency_histogram.h"

namespace shardctl::cmd {

// One kind of failed request: how often, and the first one's message.
struct ErrorTally {
  int64_t count = 0;
  std::string first_message;
};

// A run, or one connection's part of it.
struct BenchResult {
  std::string op;  // "inc" or "total"
  int connections = 0;
  int batch = 1;            // increments per request
  int64_t requests = 0;     // requests that ended: answered 2xx, answered otherwise, or failed
  int64_t ok = 0;           // of those, answered 2xx
  int64_t increments = 0;   // increments acknowledged: ok * batch for inc, 0 for total
  int64_t sum = 0;          // the sum of their values: what the run added to the total
  // Failed requests by kind: "http400" (the server answered 400), ...,
  // "connection" (never reached the server), "timeout" (sent, no answer in
  // time: it may or may not have been applied).
  std::map<std::string, ErrorTally> errors;
  std::chrono::nanoseconds elapsed{0};
  LatencyHistogram latency;  // of the requests answered 2xx
  bool interrupted = false;  // stopped early by SIGINT

  int64_t error_count() const { return requests - ok; }
  // Adds a connection's counts, errors and latencies (not elapsed).
  void Merge(const BenchResult& part);
};

// "HTTP 400" for "http400"; other kinds as they are.
std::string ErrorKindLabel(const std::string& kind);

// `count` per second of `elapsed`; 0 when elapsed is not positive.
double PerSecond(int64_t count, std::chrono::nanoseconds elapsed);

// A table, one "name  value" line each, ending in a newline:
//   requests      2000 (2000 ok, 0 errors)
//   requests/s    24512
//   latency       p50 0.142 ms  p99 0.671 ms  p99.9 1.320 ms  max 2.045 ms
std::string FormatBenchTable(const BenchResult& result);

// One line of JSON, with these fields in this order:
//   op, connections, batch, requests, ok, errors (a count), errorsByKind
//   ({"http400":3,"connection":1}), increments, sum, seconds,
//   requestsPerSecond (ok / seconds), incrementsPerSecond (increments /
//   seconds), latencyMs {p50, p99, p999, max} (each null when nothing was
//   answered 2xx), interrupted.
// Seconds and rates are rounded to 0.001 and 0.1, latencies to 0.001 ms.
std::string FormatBenchJson(const BenchResult& result);

// The progress line drawn on a terminal while a run goes on, without a line
// end: a bar, how far the run is (requests done of `total_requests`, or
// seconds of `duration_seconds` when total_requests is 0) and the current
// rate: "[########------------]   40000/100000 requests  31204 req/s".
std::string FormatProgress(int64_t done, int64_t total_requests, double elapsed_seconds,
                           double duration_seconds, double rate);

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_BENCH_REPORT_H_
