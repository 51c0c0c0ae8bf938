// shardctl bench: a load generator, as redis-benchmark is for Redis. Each of
// -c connections is a thread with an HttpClient of its own, sending requests
// back to back over one keep-alive connection until -n requests were sent in
// all or -d seconds have passed; then it prints throughput, latency
// percentiles and errors by kind.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cmd/bench_report.h"
#include "cmd/bench_workload.h"
#include "cmd/commands.h"
#include "cmd/common.h"
#include "cmd/help_format.h"
#include "core/protocol.h"
#include "net/http_client.h"
#include "net/url.h"

namespace shardctl::cmd {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kDefaultRequests = 100'000;
// At most 10^12 requests of at most 10^4 increments: increment numbers fit in int64.
constexpr int64_t kMaxRequests = 1'000'000'000'000;
constexpr double kMaxSeconds = 365 * 86400;
constexpr auto kProgressInterval = std::chrono::milliseconds(200);

struct BenchOptions {
  ClientOptions client;
  CounterOptions counter;
  int connections = 16;
  std::optional<int64_t> requests;  // -n; neither -n nor -d: kDefaultRequests
  std::optional<double> seconds;    // -d
  std::string op = "inc";
  int batch = 1;
};

// What every connection shares while a run goes on.
struct Run {
  net::Url url;
  net::HttpClientOptions client_options;
  bool increment = true;
  std::string total_path;
  std::vector<BenchBody> bodies;  // for increments: request r sends bodies[r % kValueCycle]
  int64_t requests = 0;           // 0: until the deadline
  Clock::time_point deadline;

  std::atomic<int64_t> next{0};  // the next request number to send
  std::atomic<int64_t> done{0};  // requests that ended, for the progress line
  std::atomic<bool> any_ok{false};
  std::atomic<bool> stop{false};  // a refusal before any success: the rest would fail alike

  std::mutex mutex;
  std::condition_variable finished;
  int running = 0;  // connections still sending; guarded by mutex
};

// Set by SIGINT: the connections stop after the request they are sending.
std::atomic<bool> interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);

void OnInterrupt(int) { interrupted.store(true); }

// Tallies a failed request under its kind in `part`.
void CountError(BenchResult& part, const std::string& kind, const std::string& message) {
  ErrorTally& tally = part.errors[kind];
  if (tally.count++ == 0) tally.first_message = message;
}

// One connection: sends requests until the run is over; returns its part
// of the result and, in *end, when it sent its last.
void SendRequests(Run& run, BenchResult& part, Clock::time_point* end) {
  net::HttpClient client(run.url, run.client_options);
  while (!run.stop.load(std::memory_order_relaxed) && !interrupted.load(std::memory_order_relaxed)) {
    if (run.requests == 0 && Clock::now() >= run.deadline) break;
    int64_t request = run.next.fetch_add(1, std::memory_order_relaxed);
    if (run.requests > 0 && request >= run.requests) break;
    const BenchBody* body = run.increment ? &run.bodies[request % kValueCycle] : nullptr;

    Clock::time_point start = Clock::now();
    core::Result<net::HttpReply> reply =
        body != nullptr ? client.Post("/increment", body->json) : client.Get(run.total_path);
    Clock::duration latency = Clock::now() - start;

    ++part.requests;
    run.done.fetch_add(1, std::memory_order_relaxed);
    if (!reply.ok()) {
      bool sent = reply.status().code() == core::Code::kTimeout;
      CountError(part, sent ? "timeout" : "connection", reply.status().message());
      continue;
    }
    if (reply->status >= 200 && reply->status < 300) {
      ++part.ok;
      part.latency.Record(latency);
      if (body != nullptr) {
        part.increments += body->increments;
        part.sum += body->sum;
      }
      if (!run.any_ok.load(std::memory_order_relaxed)) run.any_ok.store(true);
      continue;
    }
    CountError(part, fmt::format("http{}", reply->status), core::ParseErrorMessage(reply->body));
    if (reply->status >= 400 && reply->status < 500 && !run.any_ok.load()) run.stop.store(true);
  }
  *end = Clock::now();
  std::lock_guard lock(run.mutex);
  --run.running;
  run.finished.notify_all();
}

// Waits until every connection is done, redrawing the progress line on
// stderr every kProgressInterval when stderr is a terminal.
void WaitForConnections(Run& run, Clock::time_point start) {
  const bool progress = isatty(STDERR_FILENO) == 1;
  const double duration =
      run.requests > 0 ? 0 : std::chrono::duration<double>(run.deadline - start).count();
  int64_t last_done = 0;
  Clock::time_point last = start;
  std::unique_lock lock(run.mutex);
  while (!run.finished.wait_for(lock, kProgressInterval, [&run] { return run.running == 0; })) {
    if (!progress) continue;
    Clock::time_point now = Clock::now();
    int64_t done = run.done.load(std::memory_order_relaxed);
    double rate = static_cast<double>(done - last_done) /
                  std::max(1e-9, std::chrono::duration<double>(now - last).count());
    double elapsed = std::chrono::duration<double>(now - start).count();
    // \r and "erase to the end of the line": the line is redrawn in place.
    fmt::print(stderr, "\r{}\x1b[K",
               FormatProgress(done, run.requests, elapsed, duration, rate));
    std::fflush(stderr);
    last_done = done;
    last = now;
  }
  if (progress) {
    fmt::print(stderr, "\r\x1b[K");
    std::fflush(stderr);
  }
}

// The exit code when every request failed: by the kind that failed most.
ExitCode AllFailed(const BenchResult& result) {
  auto worst = std::max_element(
      result.errors.begin(), result.errors.end(),
      [](const auto& a, const auto& b) { return a.second.count < b.second.count; });
  const std::string& kind = worst->first;
  std::string message = fmt::format("every request failed; {} {}: {}", worst->second.count,
                                    ErrorKindLabel(kind), worst->second.first_message);
  if (kind == "http400" && result.batch > 1) {
    message += fmt::format(
        " (--batch {} sends {{\"values\":[...]}}, which an older server refuses; "
        "run without --batch)",
        result.batch);
  }
  if (kind.starts_with("http4")) return Fail(ExitCode::kRefused, message);
  if (kind.starts_with("http")) return Fail(ExitCode::kServerFailed, message);
  return Fail(ExitCode::kUnreachable, message);
}

ExitCode RunBench(const BenchOptions& options) {
  if (ExitCode loaded = LoadTlsFiles(options.client.tls); loaded != ExitCode::kOk) return loaded;
  if (options.op == "total" && options.batch != 1) {
    return Fail(ExitCode::kUsage, "--batch applies to --op inc only");
  }
  core::Result<core::CounterRef> counter = ToCounterRef(options.counter);
  if (!counter.ok()) return Fail(ExitCode::kUsage, counter.status().message());
  core::Result<net::Url> url = net::ParseUrl(options.client.url);
  if (!url.ok()) return Fail(ExitCode::kUsage, url.status().message());

  // One request first, so that a wrong --url is one clear error (exit 3)
  // rather than a run of failed connections.
  std::string health;
  if (ExitCode code = CallServer(options.client, "/healthz", nullptr, &health);
      code != ExitCode::kOk) {
    return code;
  }

  Run run;
  run.url = *url;
  auto timeout =
      std::chrono::milliseconds(static_cast<int64_t>(options.client.timeout_seconds * 1000));
  core::Result<std::string> token = ClientToken(options.client);
  if (!token.ok()) return Fail(ExitCode::kUsage, token.status().message());
  run.client_options = {
      .connect_timeout = timeout, .request_timeout = timeout, .bearer_token = *token};
  run.increment = options.op == "inc";
  run.total_path = "/total" + core::CounterQueryString(*counter);
  if (run.increment) run.bodies = IncrementBodies(options.batch, *counter);
  run.requests = options.seconds ? 0 : options.requests.value_or(kDefaultRequests);
  run.running = options.connections;

  std::vector<BenchResult> parts(options.connections);
  std::vector<Clock::time_point> ends(options.connections);
  std::vector<std::thread> connections;
  interrupted.store(false);
  struct sigaction on_interrupt = {}, previous = {};
  on_interrupt.sa_handler = OnInterrupt;
  sigemptyset(&on_interrupt.sa_mask);
  on_interrupt.sa_flags = SA_RESTART;
  sigaction(SIGINT, &on_interrupt, &previous);

  Clock::time_point start = Clock::now();
  if (options.seconds) {
    run.deadline = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(*options.seconds));
  }
  for (int i = 0; i < options.connections; ++i) {
    connections.emplace_back(SendRequests, std::ref(run), std::ref(parts[i]), &ends[i]);
  }
  WaitForConnections(run, start);
  for (std::thread& connection : connections) connection.join();
  sigaction(SIGINT, &previous, nullptr);

  BenchResult result;
  result.op = options.op;
  result.connections = options.connections;
  result.batch = options.batch;
  for (const BenchResult& part : parts) result.Merge(part);
  result.elapsed = *std::max_element(ends.begin(), ends.end()) - start;
  result.interrupted = interrupted.load();

  std::fputs((options.client.json ? FormatBenchJson(result) : FormatBenchTable(result)).c_str(),
             stdout);
  std::fflush(stdout);
  if (result.requests > 0 && result.ok == 0) return AllFailed(result);
  if (result.error_count() > 0) {
    fmt::print(stderr, "shardctl: warning: {} of {} requests failed (see errors)\n",
               result.error_count(), result.requests);
  }
  return ExitCode::kOk;
}

// A validator for -d: a number of seconds above 0 and at most a year, with a
// message that does not spell out the largest double as CLI11's does.
CLI::Validator PositiveSeconds() {
  return CLI::Validator(
      [](std::string& text) {
        double seconds = 0;
        auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
        if (error != std::errc() || end != text.data() + text.size() || !(seconds > 0) ||
            seconds > kMaxSeconds) {
          return fmt::format("'{}' is not a number of seconds above 0 and at most {} (e.g. 10 or 0.5)",
                             text, kMaxSeconds);
        }
        return std::string();
      },
      "SECONDS");
}

}  // namespace

void SetupBench(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* command = app.add_subcommand(
      "bench", "Load the server with requests from many connections and measure it");
  command
      ->add_option("-c,--connections", options->connections,
                   "Concurrent keep-alive connections, one thread each")
      ->type_name("N")
      ->check(StrictInteger())
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  CLI::Option* requests =
      command->add_option("-n,--requests", options->requests, "Requests to send in all")
          ->type_name("N")
          ->default_str(std::to_string(kDefaultRequests))
          ->check(StrictInteger())
          ->check(CLI::Range(int64_t{1}, kMaxRequests));
  CLI::Option* seconds =
      command->add_option("-d,--duration", options->seconds, "Send requests for this many seconds")
          ->type_name("SECONDS")
          ->check(PositiveSeconds());
  requests->excludes(seconds);
  seconds->excludes(requests);
  OneOf(command->add_option(
            "--op", options->op,
            "inc: POST /increment with values 1, 2, ..., 60, 1, ...; total: GET /total"),
        {"inc", "total"})
      ->capture_default_str();
  command
      ->add_option("--batch", options->batch,
                   "Increments per request: above 1, POST /increment {\"values\":[...]}")
      ->type_name("N")
      ->check(StrictInteger())
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  AddCounterOptions(*command, options->counter);
  AddClientOptions(*command, options->client);
  command->get_option("--json")->description("Print the results as one JSON object");
  command->footer(
      "Exit status: 0 when the run completed, even if some requests failed (they are\n"
      "counted under errors); when every request failed, 1 (HTTP 4xx), 4 (HTTP 5xx) or\n"
      "3 (no connection); 3 when the server cannot be reached at the start.\n"
      "Examples: shardctl bench\n"
      "          shardctl bench -c 16 -d 10 --op total\n"
      "          shardctl bench -n 100000 --batch 10 --json");
  command->callback([options, &runner] { runner = [options] { return RunBench(*options); }; });
}

}  // namespace shardctl::cmd
