// shardctl total: prints the counter's total over every shard.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cmd/client_common.h"
#include "cmd/commands.h"
#include "core/protocol.h"

namespace shardctl::cmd {
namespace {

struct TotalOptions {
  ClientOptions client;
};

ExitCode RunTotal(const TotalOptions& options) {
  std::string reply_body;
  ExitCode code = CallServer(options.client, "/total", nullptr, &reply_body);
  if (code != ExitCode::kOk) return code;
  if (options.client.json) {
    fmt::print("{}\n", reply_body);
    return ExitCode::kOk;
  }
  core::Result<int64_t> total = core::ParseTotalReply(reply_body);
  if (!total.ok()) return Fail(ExitCode::kServerFailed, total.status().message());
  fmt::print("{}\n", *total);
  return ExitCode::kOk;
}

}  // namespace

void SetupTotal(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<TotalOptions>();
  CLI::App* command = app.add_subcommand("total", "Print the counter's total as a bare integer");
  AddClientOptions(*command, options->client);
  command->footer("Example: shardctl total --url http://127.0.0.1:4000");
  command->callback([options, &runner] { runner = [options] { return RunTotal(*options); }; });
}

}  // namespace shardctl::cmd
