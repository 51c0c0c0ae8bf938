// PrometheusServer: a real Prometheus (Debian's prometheus 2.x, binary
// `prometheus`) for the integration tests, on 127.0.0.1 with a free port and a
// data directory of its own, scraping the targets it is given every second;
// ready once constructed, stopped when destroyed. Promtool runs `promtool`'s
// checks. ParseTextFormat reads the text format GET /metrics answers.
// Not thread-safe: each test owns its Prometheus.
#ifndef SHARDCTL_TESTS_INTEGRATION_PROMETHEUS_HARNESS_H_
#define SHARDCTL_TESTS_INTEGRATION_PROMETHEUS_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace shardctl::testing {

// One sample: a series' labels (with the metric's name under "__name__") and
// its value.
struct Sample {
  std::map<std::string, std::string> labels;
  double value = 0;

  const std::string& name() const { return labels.at("__name__"); }
};

// The samples of a Prometheus text-format exposition (version 0.0.4), in
// order; comment lines are skipped. Fails the test (ADD_FAILURE) on a line it
// cannot read, and leaves that line out.
std::vector<Sample> ParseTextFormat(const std::string& exposition);

// One scrape job: its name and the "host:port" targets whose /metrics it
// scrapes.
struct ScrapeJob {
  std::string name;
  std::vector<std::string> targets;
  // If not empty, scrapes send "Authorization: Bearer <the file's contents>".
  std::string bearer_token_file;
};

// What Prometheus answered to an instant query.
struct QueryResult {
  std::string error;            // empty on success; otherwise what went wrong (HTTP or PromQL)
  std::string body;             // the answer as it came, for messages
  std::vector<Sample> samples;  // a scalar answer is one sample without labels
};

class PrometheusServer {
 public:
  // Writes a configuration that scrapes `jobs` every second (and evaluates
  // `rule_files`, absolute paths, every second), starts Prometheus and waits
  // until it answers GET /-/ready. Fails the test (ADD_FAILURE, with
  // Prometheus's log) if it does not within 30 s.
  explicit PrometheusServer(const std::vector<ScrapeJob>& jobs,
                            const std::vector<std::string>& rule_files = {});
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  // True while Prometheus runs and has said it is ready.
  bool ready() const { return pid_ > 0 && ready_; }
  std::string host_port() const { return "127.0.0.1:" + std::to_string(port_); }

  // GET `path_and_query` (e.g. "/api/v1/targets") on Prometheus's HTTP API.
  Reply Get(const std::string& path_and_query);
  // Runs the instant query `promql` (GET /api/v1/query) at the present time.
  QueryResult Query(const std::string& promql);
  // Runs Query(promql) until `done` holds for its result or `timeout` passes
  // (a second's scrape interval apart, polled every 100 ms). Returns the last
  // result.
  QueryResult QueryUntil(const std::string& promql,
                         const std::function<bool(const QueryResult&)>& done,
                         std::chrono::milliseconds timeout = 15s);

  // Stops Prometheus: SIGTERM, then SIGKILL if it still runs after 10 s.
  void Stop();
  // What Prometheus wrote to stdout and stderr.
  std::string Log() const;

 private:
  TempDir dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool ready_ = false;
};

// `promtool`, the checker that comes with Prometheus. Each call runs it to
// completion; `out` holds its stdout and stderr together.
struct Promtool {
  // `promtool check metrics` with `exposition` on stdin: exit code 0 and no
  // output when it is valid and lint-free.
  static RunResult CheckMetrics(const std::string& exposition);
  // `promtool check rules FILE`.
  static RunResult CheckRules(const std::string& path);
  // `promtool check config FILE` (it checks the rule files the config names).
  static RunResult CheckConfig(const std::string& path);
  // `promtool test rules FILE`: the rules' unit tests in FILE.
  static RunResult TestRules(const std::string& path);
};

}  // namespace shardctl::testing

#endif  // SHARDCTL_TESTS_INTEGRATION_PROMETHEUS_HARNESS_H_
