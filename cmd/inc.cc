// shardctl inc VALUE: adds VALUE to a counter through the aggregator, with
// an idempotency key, so that retries after a lost answer never count twice.
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "core/counter_name.h"
#include "core/idempotency_key.h"
#include "core/protocol.h"
#include "core/value.h"

namespace shardctl::cmd {
namespace {

struct IncOptions {
  ClientOptions client;
  CounterOptions counter;
  std::optional<std::string> value;
  bool from_stdin = false;
  std::optional<std::string> idempotency_key;  // none: a fresh random one
  int retries = 3;
  bool quiet = false;
};

// 128 random bits in hex: a key no other increment will have.
std::string NewIdempotencyKey() {
  std::random_device random;  // 32 bits per call
  return fmt::format("{:08x}{:08x}{:08x}{:08x}", random(), random(), random(), random());
}

// Reads stdin a line at a time, in large blocks.
class LineReader {
 public:
  // Sets *line to the next line without its end; false at the end of input
  // (or on a read error, which *error then says).
  bool Next(std::string_view* line, std::string* error) {
    for (;;) {
      size_t end = buffer_.find('\n', start_);
      if (end != std::string::npos) {
        *line = std::string_view(buffer_).substr(start_, end - start_);
        start_ = end + 1;
        return true;
      }
      if (eof_) {
        if (start_ >= buffer_.size()) return false;
        *line = std::string_view(buffer_).substr(start_);
        start_ = buffer_.size();
        return true;
      }
      buffer_.erase(0, start_);
      start_ = 0;
      size_t had = buffer_.size();
      buffer_.resize(had + kBlock);
      ssize_t got;
      do {
        got = ::read(STDIN_FILENO, buffer_.data() + had, kBlock);
      } while (got < 0 && errno == EINTR);
      if (got < 0) *error = std::strerror(errno);
      buffer_.resize(had + static_cast<size_t>(std::max<ssize_t>(got, 0)));
      eof_ = got <= 0;
    }
  }

 private:
  static constexpr size_t kBlock = 1 << 20;
  std::string buffer_;
  size_t start_ = 0;
  bool eof_ = false;
};

// A batch of inc --stdin, ready to send, and the lines it came from.
struct StdinBatch {
  std::string body;
  bool many = false;  // the lines form (some line named its counter)
  int64_t first_line = 0;
  int64_t last_line = 0;
};

// Sends the batches of inc --stdin over a few keep-alive connections at once
// (the server has two event loops), each batch with a key of its own, retried
// with that key. After a failure no further batch is sent. Thread-safe.
class BatchSender {
 public:
  static constexpr int kConnections = 3;

  BatchSender(const IncOptions& options, const core::CounterRef& counter)
      : options_(options),
        many_path_(counter.window > 0 ? fmt::format("/increment?window={}", counter.window)
                                      : "/increment") {}
  ~BatchSender() { Finish(); }

  // Opens the connections' clients; false (the reason printed) if it cannot.
  bool Start() {
    for (int i = 0; i < kConnections; ++i) {
      std::unique_ptr<net::HttpClient> client = MakeServerClient(options_.client, &failure_);
      if (client == nullptr) return false;
      workers_.emplace_back(
          [this, client = std::shared_ptr<net::HttpClient>(std::move(client))] { Work(*client); });
    }
    return true;
  }

  // Queues `batch` (waiting while the connections are all busy and a few
  // batches wait already); false if a batch failed, and nothing more is sent.
  bool Send(StdinBatch batch) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return failed_ || queue_.size() < 2 * kConnections; });
    if (failed_) return false;
    queue_.push_back(std::move(batch));
    changed_.notify_all();
    return true;
  }

  // Waits until every queued batch is answered; returns kOk, or the exit
  // code of the first failure (already reported).
  ExitCode Finish() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      changed_.notify_all();
    }
    for (std::thread& worker : workers_) worker.join();
    workers_.clear();
    return failure_;
  }

  int64_t counted() const { return counted_; }
  int64_t batches() const { return batches_; }
  // The first and last line of the batch that failed (after Finish).
  std::pair<int64_t, int64_t> failed_lines() const { return failed_lines_; }

 private:
  void Work(net::HttpClient& client) {
    for (;;) {
      StdinBatch batch;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return failed_ || closed_ || !queue_.empty(); });
        if (failed_ || queue_.empty()) return;
        batch = std::move(queue_.front());
        queue_.pop_front();
        changed_.notify_all();
      }
      net::HttpHeaders headers = {{std::string(core::kIdempotencyKeyHeader),
                                   core::FormatIdempotencyKeyHeader(NewIdempotencyKey())}};
      if (batch.many) headers.emplace_back("Content-Type", "text/plain");
      std::string reply_body;
      ExitCode code = CallServerWith(client, batch.many ? many_path_ : "/increment", &batch.body,
                                     &reply_body, headers, {.retries = options_.retries});
      core::Result<int64_t> applied = core::Internal("");
      if (code == ExitCode::kOk) {
        applied = batch.many ? Applied(core::ParseManyReply(reply_body))
                             : Applied(core::ParseBatchReply(reply_body));
        if (!applied.ok()) code = Fail(ExitCode::kServerFailed, applied.status().message());
      }
      std::lock_guard lock(mutex_);
      if (code == ExitCode::kOk) {
        counted_ += *applied;
        ++batches_;
        continue;
      }
      if (!failed_) {
        failed_ = true;
        failure_ = code;
        failed_lines_ = {batch.first_line, batch.last_line};
        changed_.notify_all();
      }
      return;
    }
  }

  template <typename Reply>
  static core::Result<int64_t> Applied(const core::Result<Reply>& reply) {
    if (!reply.ok()) return reply.status();
    return reply->applied;
  }

  const IncOptions& options_;
  const std::string many_path_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<StdinBatch> queue_;
  bool closed_ = false;
  bool failed_ = false;
  ExitCode failure_ = ExitCode::kOk;
  std::pair<int64_t, int64_t> failed_lines_;
  int64_t counted_ = 0;
  int64_t batches_ = 0;
};

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// inc --stdin: one increment per line, `VALUE` (of --counter) or `COUNTER
// VALUE`, sent in batches: {"values":[...]} while every line is a bare value,
// else the lines form of a batch of many counters. A bad line stops the run
// before its batch is sent.
ExitCode RunIncFromStdin(const IncOptions& options, const core::CounterRef& counter) {
  constexpr size_t kBatchValues = 10000;  // of bare values
  constexpr size_t kBatchBytes = 60000;   // well within the server's 64 KiB body limit
  BatchSender sender(options, counter);
  if (!sender.Start()) return sender.Finish();

  // The batch being filled: as lines, and while it has only bare values, as
  // those values too.
  std::string lines;
  std::vector<int64_t> values;
  size_t items = 0;
  size_t bare_bytes = 0;
  bool many = false;
  int64_t line_number = 0;
  int64_t batch_first_line = 0;
  auto send = [&]() -> bool {
    if (items == 0) return true;
    StdinBatch batch{
        .body = {}, .many = many, .first_line = batch_first_line, .last_line = line_number};
    if (many) {
      batch.body = std::move(lines);
    } else {
      batch.body = core::FormatBatchRequest(
          {.values = std::move(values), .counter = counter, .idempotency_key = {}});
    }
    lines.clear();
    values.clear();
    items = 0;
    bare_bytes = 0;
    many = false;
    return sender.Send(std::move(batch));
  };
  auto stopped = [&]() -> ExitCode {
    ExitCode code = sender.Finish();
    const auto [first, last] = sender.failed_lines();
    fmt::print(stderr,
               "shardctl: lines {} to {} were not counted (the batch failed); {} values of other "
               "batches were\n",
               first, last, sender.counted());
    return code;
  };

  LineReader reader;
  std::string_view line;
  std::string read_error;
  while (reader.Next(&line, &read_error)) {
    ++line_number;
    while (!line.empty() && IsBlank(line.back())) line.remove_suffix(1);
    while (!line.empty() && IsBlank(line.front())) line.remove_prefix(1);
    if (line.empty()) continue;  // blank lines carry no value
    std::string_view name = counter.name;
    std::string_view value_text = line;
    core::Status bad;
    if (size_t gap = line.find_first_of(" \t"); gap != std::string_view::npos) {
      name = line.substr(0, gap);
      value_text = line.substr(gap + 1);
      while (!value_text.empty() && IsBlank(value_text.front())) value_text.remove_prefix(1);
      if (value_text.find_first_of(" \t") != std::string_view::npos) {
        bad = core::InvalidArgument("expected VALUE or COUNTER VALUE, such as \"c:1 5\"");
      } else if (core::Status valid = core::ValidateCounterName(name); !valid.ok()) {
        bad = valid;
      }
    }
    core::Result<int64_t> value = core::ParseValue(value_text);
    if (!bad.ok()) value = bad;
    if (!value.ok()) {
      ExitCode code = sender.Finish();
      if (code != ExitCode::kOk) return stopped();
      return Fail(ExitCode::kUsage,
                  fmt::format("line {}: {}; nothing from line {} on was counted{}", line_number,
                              value.status().message(), items == 0 ? line_number : batch_first_line,
                              sender.counted() > 0
                                  ? fmt::format(" (the {} values before were)", sender.counted())
                                  : std::string()));
    }
    if (items == 0) batch_first_line = line_number;
    if (name.data() != counter.name.data() && !many) {
      // The first named line: the batch goes as lines from here on.
      many = true;
      for (int64_t before : values)
        fmt::format_to(std::back_inserter(lines), "{} {}\n", counter.name, before);
    }
    ++items;
    if (many) {
      lines.append(name).append(" ").append(value_text).append("\n");
    } else {
      values.push_back(*value);
      bare_bytes += value_text.size() + 1;
    }
    if ((!many && values.size() >= kBatchValues) ||
        (many ? lines.size() : bare_bytes) >= kBatchBytes) {
      if (!send()) return stopped();
    }
  }
  if (!read_error.empty()) {
    ExitCode code = sender.Finish();
    if (code != ExitCode::kOk) return stopped();
    return Fail(ExitCode::kUsage, fmt::format("cannot read stdin: {}", read_error));
  }
  if (!send()) return stopped();
  if (sender.Finish() != ExitCode::kOk) return stopped();
  if (options.quiet) return ExitCode::kOk;
  if (options.client.json) {
    fmt::print("{{\"applied\":{},\"batches\":{}}}\n", sender.counted(), sender.batches());
  } else {
    fmt::print("counted {} values in {} batches\n", sender.counted(), sender.batches());
  }
  return ExitCode::kOk;
}

ExitCode RunInc(const IncOptions& options) {
  if (ExitCode loaded = LoadTlsFiles(options.client.tls); loaded != ExitCode::kOk) return loaded;
  core::Result<core::CounterRef> counter = ToCounterRef(options.counter);
  if (!counter.ok()) return Fail(ExitCode::kUsage, counter.status().message());
  if (options.from_stdin) {
    if (options.value) return Fail(ExitCode::kUsage, "give VALUE or --stdin, not both");
    if (options.idempotency_key) {
      return Fail(ExitCode::kUsage,
                  "--idempotency-key is for one VALUE; --stdin sends a key "
                  "of its own with each batch");
    }
    return RunIncFromStdin(options, *counter);
  }
  if (!options.value) return Fail(ExitCode::kUsage, "give a VALUE to add, or --stdin");
  // Parsed here, strictly, not by CLI11: it would take 010 as octal and
  // saturate 99999999999999999999 to INT64_MAX without a word.
  core::Result<int64_t> value = core::ParseValue(*options.value);
  if (!value.ok()) return Fail(ExitCode::kUsage, value.status().message());

  std::string key = options.idempotency_key ? *options.idempotency_key : NewIdempotencyKey();
  if (core::Status valid = core::ValidateIdempotencyKey(key); !valid.ok()) {
    return Fail(ExitCode::kUsage, "--idempotency-key: " + valid.message());
  }

  std::string body = core::FormatIncrementRequest({.value = *value, .counter = *counter});
  // Every attempt carries the same key: the shard applies the first that
  // reaches it and answers the others with that first answer.
  net::HttpHeaders headers = {
      {std::string(core::kIdempotencyKeyHeader), core::FormatIdempotencyKeyHeader(key)}};
  std::string reply_body;
  ExitCode code = CallServer(options.client, "/increment", &body, &reply_body, headers,
                             {.retries = options.retries});
  if (code != ExitCode::kOk || options.quiet) return code;
  return PrintReply(options.client, reply_body, core::ParseIncrementReply,
                    [&](const core::IncrementReply& reply) {
                      std::string which =
                          counter->is_default() ? "" : fmt::format("{} ", counter->name);
                      fmt::print("{}shard {}: count {}\n", which, reply.shard_id, reply.count);
                    });
}

}  // namespace

void SetupInc(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<IncOptions>();
  CLI::App* command = app.add_subcommand("inc", "Add VALUE to a counter (negative subtracts)");
  command->add_option("value", options->value, "A decimal integer within int64");
  command->add_flag("--stdin", options->from_stdin,
                    "Read lines of VALUE or COUNTER VALUE from stdin and send them in batches");
  AddCounterOptions(*command, options->counter);
  AddClientOptions(*command, options->client);
  command
      ->add_option("--retries", options->retries,
                   "Attempts after the first when the server cannot be reached, the answer is "
                   "lost or late, or it answers 409, 502, 503 or 504")
      ->type_name("N")
      ->check(StrictInteger())
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  command
      ->add_option("--idempotency-key", options->idempotency_key,
                   "The increment's Idempotency-Key; reuse it to retry an increment whose "
                   "outcome is unknown (default: 128 random bits in hex)")
      ->type_name("KEY");
  command->add_flag(
      "-q,--quiet", options->quiet,
      "Print nothing when it worked (errors still go to stderr); the exit code tells");
  command->footer(
      "Examples: shardctl inc 5\n"
      "          shardctl inc --quiet 1 || echo 'not counted' >&2\n"
      "          shardctl inc -3 --counter pageviews\n"
      "          shardctl inc 1 -k api:client42 --window 60\n"
      "          shardctl inc 1 --idempotency-key order-1234-paid\n"
      "          seq 1 1000000 | shardctl inc --stdin -k loadtest");
  command->callback([options, &runner] { runner = [options] { return RunInc(*options); }; });
}

}  // namespace shardctl::cmd
