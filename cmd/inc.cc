// shardctl inc VALUE: adds VALUE to a counter through the aggregator, with
// an idempotency key, so that retries after a lost answer never count twice.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <fmt/format.h>

#include "cmd/commands.h"
#include "cmd/common.h"
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

// inc --stdin: one value per line, sent in batches (POST /increment
// {"values":[...]}), each with a key of its own, so that its retries never
// count it twice. A bad line stops the run before its batch is sent.
ExitCode RunIncFromStdin(const IncOptions& options, const core::CounterRef& counter) {
  constexpr size_t kBatchValues = 10000;
  constexpr size_t kBatchBytes = 60000;  // well within the server's 64 KiB body limit
  core::BatchRequest batch;
  batch.counter = counter;
  size_t batch_bytes = 0;
  int64_t counted = 0;
  int64_t batches = 0;
  int64_t line_number = 0;
  int64_t batch_first_line = 0;
  auto send = [&]() -> ExitCode {
    if (batch.values.empty()) return ExitCode::kOk;
    std::string body = core::FormatBatchRequest(batch);
    net::HttpHeaders headers = {{std::string(core::kIdempotencyKeyHeader),
                                 core::FormatIdempotencyKeyHeader(NewIdempotencyKey())}};
    std::string reply_body;
    ExitCode code = CallServer(options.client, "/increment", &body, &reply_body, headers,
                               {.retries = options.retries});
    core::Result<core::BatchReply> reply =
        code == ExitCode::kOk ? core::ParseBatchReply(reply_body) : core::Internal("");
    if (code == ExitCode::kOk && !reply.ok()) {
      code = Fail(ExitCode::kServerFailed, reply.status().message());
    }
    if (code != ExitCode::kOk) {
      fmt::print(stderr,
                 "shardctl: lines {} to {} were not counted (the batch failed); the {} values "
                 "before them were\n",
                 batch_first_line, line_number, counted);
      return code;
    }
    counted += reply->applied;
    ++batches;
    batch.values.clear();
    batch_bytes = 0;
    return ExitCode::kOk;
  };

  LineReader reader;
  std::string_view line;
  std::string read_error;
  while (reader.Next(&line, &read_error)) {
    ++line_number;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty()) continue;  // blank lines carry no value
    core::Result<int64_t> value = core::ParseValue(line);
    if (!value.ok()) {
      return Fail(ExitCode::kUsage,
                  fmt::format("line {}: {}; nothing from line {} on was counted{}", line_number,
                              value.status().message(),
                              batch.values.empty() ? line_number : batch_first_line,
                              counted > 0 ? fmt::format(" (the {} values before were)", counted)
                                          : std::string()));
    }
    if (batch.values.empty()) batch_first_line = line_number;
    batch.values.push_back(*value);
    batch_bytes += line.size() + 1;
    if (batch.values.size() >= kBatchValues || batch_bytes >= kBatchBytes) {
      if (ExitCode code = send(); code != ExitCode::kOk) return code;
    }
  }
  if (!read_error.empty()) {
    return Fail(ExitCode::kUsage, fmt::format("cannot read stdin: {}", read_error));
  }
  if (ExitCode code = send(); code != ExitCode::kOk) return code;
  if (options.quiet) return ExitCode::kOk;
  if (options.client.json) {
    fmt::print("{{\"applied\":{},\"batches\":{}}}\n", counted, batches);
  } else {
    fmt::print("counted {} values in {} batches\n", counted, batches);
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
      return Fail(ExitCode::kUsage, "--idempotency-key is for one VALUE; --stdin sends a key "
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
                    "Read the values from stdin, one per line, and send them in batches");
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
  command->add_flag("-q,--quiet", options->quiet,
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
