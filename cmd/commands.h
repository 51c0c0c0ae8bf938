// The subcommands of the shardctl binary. Each Setup… adds its subcommand to
// the app; when the command line chooses it, `runner` is set to run it.
#ifndef SHARDCTL_CMD_COMMANDS_H_
#define SHARDCTL_CMD_COMMANDS_H_

#include <functional>

#include <CLI/CLI.hpp>

#include "cmd/exit_code.h"

namespace shardctl::cmd {

using Runner = std::function<ExitCode()>;

void SetupServe(CLI::App& app, Runner& runner);
void SetupInc(CLI::App& app, Runner& runner);
void SetupTotal(CLI::App& app, Runner& runner);
void SetupCounters(CLI::App& app, Runner& runner);
void SetupReset(CLI::App& app, Runner& runner);
void SetupStatus(CLI::App& app, Runner& runner);
void SetupTop(CLI::App& app, Runner& runner);
void SetupStop(CLI::App& app, Runner& runner);
void SetupBench(CLI::App& app, Runner& runner);
void SetupCluster(CLI::App& app, Runner& runner);

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_COMMANDS_H_
