// shardctl inc VALUE: adds VALUE to a counter through the aggregator, with
// an idempotency key, so that retries after a lost answer never count twice.
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
  std::string value;
  std::optional<std::string> idempotency_key;  // none: a fresh random one
  int retries = 3;
  bool quiet = false;
};

// 128 random bits in hex: a key no other increment will have.
std::string NewIdempotencyKey() {
  std::random_device random;  // 32 bits per call
  return fmt::format("{:08x}{:08x}{:08x}{:08x}", random(), random(), random(), random());
}

ExitCode RunInc(const IncOptions& options) {
  // Parsed here, strictly, not by CLI11: it would take 010 as octal and
  // saturate 99999999999999999999 to INT64_MAX without a word.
  core::Result<int64_t> value = core::ParseValue(options.value);
  if (!value.ok()) return Fail(ExitCode::kUsage, value.status().message());
  core::Result<core::CounterRef> counter = ToCounterRef(options.counter);
  if (!counter.ok()) return Fail(ExitCode::kUsage, counter.status().message());

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
  command->add_option("value", options->value, "A decimal integer within int64")->required();
  AddCounterOptions(*command, options->counter);
  AddClientOptions(*command, options->client);
  command
      ->add_option("--retries", options->retries,
                   "Attempts after the first when the server cannot be reached, the answer is "
                   "lost or late, or it answers 409, 502, 503 or 504")
      ->check(StrictInteger())
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  command->add_option("--idempotency-key", options->idempotency_key,
                      "The increment's Idempotency-Key (default: 128 random bits in hex). "
                      "Reuse it to retry an increment whose outcome is unknown");
  command->add_flag("-q,--quiet", options->quiet,
                    "Print nothing when it worked (errors still go to stderr); the exit code tells");
  command->footer(
      "Examples: shardctl inc 5\n"
      "          shardctl inc --quiet 1 || echo 'not counted' >&2\n"
      "          shardctl inc -3 --counter pageviews\n"
      "          shardctl inc 1 -k api:client42 --window 60\n"
      "          shardctl inc 1 --idempotency-key order-1234-paid");
  command->callback([options, &runner] { runner = [options] { return RunInc(*options); }; });
}

}  // namespace shardctl::cmd
