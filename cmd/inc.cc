// shardctl inc VALUE: adds VALUE to the counter through the aggregator.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cmd/client_common.h"
#include "cmd/commands.h"
#include "core/protocol.h"
#include "core/value.h"

namespace shardctl::cmd {
namespace {

struct IncOptions {
  ClientOptions client;
  std::string value;
};

ExitCode RunInc(const IncOptions& options) {
  // Parsed here, strictly, not by CLI11: it would take 010 as octal and
  // saturate 99999999999999999999 to INT64_MAX without a word.
  core::Result<int64_t> value = core::ParseValue(options.value);
  if (!value.ok()) return Fail(ExitCode::kUsage, value.status().message());

  std::string body = core::FormatIncrementRequest({.value = *value});
  std::string reply_body;
  ExitCode code = CallServer(options.client, "/increment", &body, &reply_body);
  if (code != ExitCode::kOk) return code;
  if (options.client.json) {
    fmt::print("{}\n", reply_body);
    return ExitCode::kOk;
  }
  core::Result<core::IncrementReply> reply = core::ParseIncrementReply(reply_body);
  if (!reply.ok()) return Fail(ExitCode::kServerFailed, reply.status().message());
  fmt::print("shard {}: count {}\n", reply->shard_id, reply->count);
  return ExitCode::kOk;
}

}  // namespace

void SetupInc(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<IncOptions>();
  CLI::App* command = app.add_subcommand("inc", "Add VALUE to the counter (negative subtracts)");
  command->add_option("value", options->value, "A decimal integer within int64")->required();
  AddClientOptions(*command, options->client);
  command->footer(
      "Examples: shardctl inc 5\n          shardctl inc -3 --url http://127.0.0.1:4000");
  command->callback([options, &runner] { runner = [options] { return RunInc(*options); }; });
}

}  // namespace shardctl::cmd
