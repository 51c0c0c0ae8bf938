// What the client subcommands (inc, total) share: the options that say which
// server to talk to, and one call that reports every failure the same way.
#ifndef SHARDCTL_CMD_CLIENT_COMMON_H_
#define SHARDCTL_CMD_CLIENT_COMMON_H_

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "cmd/exit_code.h"

namespace shardctl::cmd {

struct ClientOptions {
  std::string url = "http://127.0.0.1:4000";
  double timeout_seconds = 5;
  bool json = false;
};

// Adds --url (also SHARDCTL_URL), --timeout and --json to `command`.
void AddClientOptions(CLI::App& command, ClientOptions& options);

// Prints "shardctl: error: <message>" on stderr and returns `code`.
ExitCode Fail(ExitCode code, std::string_view message);

// Sends a GET (empty `body`) or POST to `path` on the server. Returns kOk with
// the answer in *reply_body when the server answered 2xx; otherwise prints why
// it failed and returns the exit code for it (kRefused, kUnreachable, ...).
ExitCode CallServer(const ClientOptions& options, const std::string& path,
                    const std::string* post_body, std::string* reply_body);

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_CLIENT_COMMON_H_
