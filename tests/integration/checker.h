// The cluster's checker, in the manner of Jepsen's counter test and Redis's
// consistency-test.rb: clients send keyed increments through an aggregator,
// retrying each with its key until it is acknowledged (as `shardctl inc`
// does), and record every increment as acknowledged, refused or unknown. At
// the end the total must satisfy
//   sum(acknowledged) <= total <= sum(acknowledged) + sum(unknown)
// (nothing acknowledged lost, no keyed retry counted twice). Used by the
// cluster's fault tests (cluster_faults_test.cc, replication_test.cc).
#ifndef SHARDCTL_TESTS_INTEGRATION_CHECKER_H_
#define SHARDCTL_TESTS_INTEGRATION_CHECKER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace shardctl::testing {

struct Tally {
  std::atomic<int64_t> increments{0};
  std::atomic<int64_t> acknowledged{0};  // the sum of their values
  std::atomic<int64_t> unknown{0};
  std::atomic<int64_t> refused{0};
  std::atomic<int64_t> retries{0};

  // Acknowledged values beyond the total, and total beyond what may count.
  int64_t Lost(int64_t total) const;
  int64_t Doubled(int64_t total) const;
};

class Checker {
 public:
  // Starts `clients` clients against the aggregator at host:port.
  Checker(const std::string& address, Tally& tally, int clients = 8);
  ~Checker();
  // Stops the load; each client first retries what it has in flight for a
  // few seconds more (a fault may still be healing).
  void Stop();
  // Waits until every client has had an increment acknowledged after
  // `since` (so every shard takes writes again, the values being spread
  // over them); returns how long after `since` that was, or -1 s if not
  // within `timeout`.
  std::chrono::milliseconds WaitUntilEveryClientWrites(std::chrono::steady_clock::time_point since,
                                                       std::chrono::milliseconds timeout);

 private:
  void Run(const std::string& host, int port, int c);

  Tally& tally_;
  const int generation_;  // in every Idempotency-Key it sends
  std::atomic<bool> stop_{false};
  // Per client: when its last increment was acknowledged (steady clock, ns).
  std::vector<std::atomic<int64_t>> last_ack_;
  std::vector<std::thread> threads_;
};

// SHARDCTL_CHECKER_SECONDS stretches the load between faults
// (bench/checker.sh): the time to wait between two faults.
std::chrono::milliseconds Dwell(int faults);

}  // namespace shardctl::testing

#endif  // SHARDCTL_TESTS_INTEGRATION_CHECKER_H_
