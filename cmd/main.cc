// shardctl: a sharded counter service and its command-line tool.
#include <cstdio>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cmd/commands.h"
#include "cmd/exit_code.h"

int main(int argc, char** argv) {
  using shardctl::cmd::ExitCode;
  CLI::App app{"shardctl: a sharded counter service and its command-line tool"};
  app.set_version_flag("--version", SHARDCTL_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'shardctl COMMAND --help' for a command's options.");

  shardctl::cmd::Runner runner;
  shardctl::cmd::SetupServe(app, runner);
  shardctl::cmd::SetupInc(app, runner);
  shardctl::cmd::SetupTotal(app, runner);
  shardctl::cmd::SetupCounters(app, runner);
  shardctl::cmd::SetupReset(app, runner);
  shardctl::cmd::SetupStatus(app, runner);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help, --version
    fmt::print(stderr, "shardctl: error: {}\nRun 'shardctl --help' for usage.\n", error.what());
    return static_cast<int>(ExitCode::kUsage);
  }
  return static_cast<int>(runner());
}
