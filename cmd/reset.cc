// shardctl reset NAME: sets a counter to 0 on every shard.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "core/counter_name.h"
#include "core/protocol.h"

namespace shardctl::cmd {
namespace {

struct ResetOptions {
  ClientOptions client;
  std::string name;
  bool yes = false;
};

// Asks on the terminal; true only for an explicit yes.
bool Confirm(const std::string& name) {
  fmt::print(stderr, "Reset counter '{}' to 0 on every shard? [y/N] ", name);
  std::fflush(stderr);
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

ExitCode RunReset(const ResetOptions& options) {
  if (ExitCode loaded = LoadTlsFiles(options.client.tls); loaded != ExitCode::kOk) return loaded;
  if (core::Status valid = core::ValidateCounterName(options.name); !valid.ok()) {
    return Fail(ExitCode::kUsage, valid.message());
  }
  if (!options.yes && isatty(STDIN_FILENO) == 1 && !Confirm(options.name)) {
    return Fail(ExitCode::kRefused, "not reset: not confirmed (--yes skips the question)");
  }
  std::string body = core::FormatResetRequest(options.name);
  std::string reply_body;
  ExitCode code = CallServer(options.client, "/reset", &body, &reply_body);
  if (code != ExitCode::kOk) return code;
  return PrintReply(options.client, reply_body, core::ParseResetReply, [&](int64_t removed) {
    fmt::print("reset {}: removed {}\n", options.name, removed);
  });
}

}  // namespace

void SetupReset(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<ResetOptions>();
  CLI::App* command = app.add_subcommand("reset", "Set a counter to 0 on every shard");
  command->add_option("name", options->name, "The counter's name")->required();
  command->add_flag("-y,--yes", options->yes, "Do not ask for confirmation on a terminal");
  AddClientOptions(*command, options->client);
  command->footer("Example: shardctl reset pageviews --yes");
  command->callback([options, &runner] { runner = [options] { return RunReset(*options); }; });
}

}  // namespace shardctl::cmd
