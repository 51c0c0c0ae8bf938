// Running serve as a daemon: pid files, and detaching from the terminal while
// the command that started it waits until the daemon is ready or has failed.
#ifndef SHARDCTL_CMD_DAEMON_H_
#define SHARDCTL_CMD_DAEMON_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "core/status.h"

namespace shardctl::cmd {

// $XDG_RUNTIME_DIR/shardctl.pid; else /run/shardctl.pid for root and
// /tmp/shardctl-<uid>.pid for anyone else.
std::string DefaultPidFile();

// The pid that the pid file at `path` names, if that process runs shardctl;
// nullopt if there is no such file or it is stale.
std::optional<pid_t> LiveShardctlPid(const std::string& path);

// Writes this process's pid to `path` (through a temporary file and a rename,
// so a reader never sees half of it).
core::Status WritePidFile(const std::string& path);

// Removes the pid file at `path` if it still names this process.
void RemovePidFile(const std::string& path);

// Detaches: forks twice with setsid() between, so the daemon has no
// controlling terminal and is not the session leader, and reads stdin from
// /dev/null. Returns in the daemon only; the process that called it waits
// until the daemon calls ReportReady() (it then exits 0) or exits first (it
// then exits with the daemon's exit code, 5 if none). Until ReportReady()
// the daemon's stdout and stderr are still those of the command that started
// it, so a failure to start is printed where the user sees it.
// REQUIRES: no other thread runs yet.
void Daemonize();

// Tells the process that started the daemon how starting went: 0 once every
// listener is ready, else the exit code the daemon is about to exit with.
// Only the first report counts; a no-op when not daemonized.
void ReportStarted(int exit_code);

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_DAEMON_H_
