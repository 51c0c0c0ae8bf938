// shardctl stop: stops a serve started with a pid file (--daemon writes one):
// SIGTERM, then waits for it to exit.
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "cmd/daemon.h"

namespace shardctl::cmd {
namespace {

struct StopOptions {
  std::string pid_file = DefaultPidFile();
  double timeout_seconds = 10;
  bool quiet = false;
};

ExitCode RunStop(const StopOptions& options) {
  std::optional<pid_t> pid = LiveShardctlPid(options.pid_file);
  if (!pid) {
    if (!options.quiet) {
      fmt::print(stderr, "shardctl: not running (no running shardctl named in {})\n",
                 options.pid_file);
    }
    return ExitCode::kNotRunning;
  }
  // A pidfd refers to this very process even if its pid is reused later, and
  // becomes readable when it exits: no polling with sleeps.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0));
  if (pidfd < 0) {
    return Fail(ExitCode::kServerFailed,
                fmt::format("cannot watch pid {}: {}", *pid, std::strerror(errno)));
  }
  if (::kill(*pid, SIGTERM) != 0) {
    int error = errno;
    ::close(pidfd);
    if (error == ESRCH) return ExitCode::kNotRunning;
    return Fail(ExitCode::kServerFailed,
                fmt::format("cannot signal pid {}: {}", *pid, std::strerror(error)));
  }
  pollfd watch{pidfd, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&watch, 1, static_cast<int>(options.timeout_seconds * 1000));
  } while (ready < 0 && errno == EINTR);
  ::close(pidfd);
  if (ready <= 0) {
    return Fail(ExitCode::kServerFailed,
                fmt::format("shardctl (pid {}) did not stop within {} s after SIGTERM", *pid,
                            options.timeout_seconds));
  }
  if (!options.quiet) fmt::print("stopped shardctl (pid {})\n", *pid);
  return ExitCode::kOk;
}

}  // namespace

void SetupStop(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<StopOptions>();
  CLI::App* command =
      app.add_subcommand("stop", "Stop a running serve (SIGTERM) and wait until it has exited");
  command->add_option("--pid-file", options->pid_file, "The pid file serve wrote")
      ->type_name("FILE")
      ->capture_default_str();
  command->add_option("--timeout", options->timeout_seconds, "Seconds to wait for it to exit")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_flag("-q,--quiet", options->quiet, "Print nothing; the exit code tells");
  command->footer(
      "Exits 0 once it stopped, 6 if it was not running, 4 if it did not stop in time.\n"
      "Examples: shardctl stop\n"
      "          shardctl stop --pid-file /run/shardctl.pid --timeout 30");
  command->callback([options, &runner] { runner = [options] { return RunStop(*options); }; });
}

}  // namespace shardctl::cmd
