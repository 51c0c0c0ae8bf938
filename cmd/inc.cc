// shardctl inc VALUE: adds VALUE to a counter through the aggregator.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "core/protocol.h"
#include "core/value.h"

namespace shardctl::cmd {
namespace {

struct IncOptions {
  ClientOptions client;
  CounterOptions counter;
  std::string value;
};

ExitCode RunInc(const IncOptions& options) {
  // Parsed here, strictly, not by CLI11: it would take 010 as octal and
  // saturate 99999999999999999999 to INT64_MAX without a word.
  core::Result<int64_t> value = core::ParseValue(options.value);
  if (!value.ok()) return Fail(ExitCode::kUsage, value.status().message());
  core::Result<core::CounterRef> counter = ToCounterRef(options.counter);
  if (!counter.ok()) return Fail(ExitCode::kUsage, counter.status().message());

  std::string body = core::FormatIncrementRequest(
      {.value = *value, .counter = *counter, .idempotency_key = {}});
  std::string reply_body;
  ExitCode code = CallServer(options.client, "/increment", &body, &reply_body);
  if (code != ExitCode::kOk) return code;
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
  command->footer(
      "Examples: shardctl inc 5\n"
      "          shardctl inc -3 --counter pageviews\n"
      "          shardctl inc 1 -k api:client42 --window 60");
  command->callback([options, &runner] { runner = [options] { return RunInc(*options); }; });
}

}  // namespace shardctl::cmd
