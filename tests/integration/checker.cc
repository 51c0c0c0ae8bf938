#include "tests/integration/checker.h"

#include <algorithm>
#include <cstdlib>

#include <gtest/gtest.h>
#include <httplib.h>

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

int64_t Now() { return Clock::now().time_since_epoch().count(); }

// Checkers made so far in this process: each one's keys are its own.
std::atomic<int> generations{0};

}  // namespace

int64_t Tally::Lost(int64_t total) const { return std::max<int64_t>(0, acknowledged - total); }

int64_t Tally::Doubled(int64_t total) const {
  return std::max<int64_t>(0, total - acknowledged - unknown);
}

std::chrono::milliseconds Dwell(int faults) {
  const char* text = std::getenv("SHARDCTL_CHECKER_SECONDS");
  int seconds = text != nullptr ? std::atoi(text) : 0;
  return seconds > 0 ? std::chrono::milliseconds(seconds * 1000 / std::max(faults, 1))
                     : std::chrono::milliseconds(1500);
}

Checker::Checker(const std::string& address, Tally& tally, int clients)
    : tally_(tally), generation_(++generations), last_ack_(clients) {
  const std::string host = address.substr(0, address.rfind(':'));
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  for (int c = 0; c < clients; ++c) {
    last_ack_[c] = 0;
    threads_.emplace_back([this, host, port, c] { Run(host, port, c); });
  }
}

Checker::~Checker() { Stop(); }

void Checker::Stop() {
  stop_ = true;
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

std::chrono::milliseconds Checker::WaitUntilEveryClientWrites(Clock::time_point since,
                                                             std::chrono::milliseconds timeout) {
  const int64_t from = since.time_since_epoch().count();
  for (auto deadline = Clock::now() + timeout; Clock::now() < deadline;) {
    int64_t latest_first = 0;
    bool all = true;
    for (const auto& last : last_ack_) {
      const int64_t at = last.load();
      all = all && at > from;
      latest_first = std::max(latest_first, at);
    }
    if (all) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
          Clock::duration(latest_first - from));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the clients run on their own
  }
  return std::chrono::milliseconds(-1000);
}

void Checker::Run(const std::string& host, int port, int c) {
  httplib::Client http(host, port);
  http.set_tcp_nodelay(true);
  http.set_keep_alive(true);
  http.set_connection_timeout(2, 0);
  http.set_read_timeout(4, 0);
  // Values 1..60 cover every residue of the shard count, so each client
  // writes to every shard in turn.
  for (int64_t i = 0; !stop_.load(); ++i) {
    const int64_t value = 1 + (c * 13 + i) % 60;
    const std::string body = "{\"value\":" + std::to_string(value) + "}";
    const httplib::Headers key = {{"Idempotency-Key", "g" + std::to_string(generation_) + "c" +
                                                          std::to_string(c) + "-" +
                                                          std::to_string(i)}};
    ++tally_.increments;
    bool maybe_applied = false;
    const auto give_up_after = std::chrono::seconds(8);
    Clock::time_point stop_seen{};
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0) {
        ++tally_.retries;
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(20 * attempt, 200)));
      }
      httplib::Result result = http.Post("/increment", key, body, "application/json");
      const int status = result ? result->status : 0;
      if (status == 200) {
        tally_.acknowledged += value;
        last_ack_[c] = Now();
        break;
      }
      if (status == 400 || status == 422) {
        ADD_FAILURE() << status << " " << result->body;
        tally_.refused += value;
        break;
      }
      // No answer, 409 (a copy still in flight), 502, 503 (refused before
      // it was applied) or 504 (unknown): try again with the same key.
      maybe_applied = maybe_applied || status != 503;
      if (stop_.load()) {
        if (stop_seen == Clock::time_point{}) stop_seen = Clock::now();
        if (Clock::now() - stop_seen > give_up_after) {
          (maybe_applied ? tally_.unknown : tally_.refused) += value;
          break;
        }
      }
    }
  }
}

}  // namespace shardctl::testing
