// The exit codes of the shardctl binary: part of its interface for scripts,
// listed in the README and the man page.
#ifndef SHARDCTL_CMD_EXIT_CODE_H_
#define SHARDCTL_CMD_EXIT_CODE_H_

namespace shardctl::cmd {

enum class ExitCode : int {
  kOk = 0,
  kRefused = 1,       // the server refused the request (HTTP 4xx)
  kUsage = 2,         // bad command line: unknown option, bad value, ...
  kUnreachable = 3,   // the server could not be reached (refused, timed out)
  kServerFailed = 4,  // the server failed to serve it (HTTP 5xx, e.g. a shard down);
                      // status: a shard is down; stop: it did not stop in time
  kCannotServe = 5,   // serve could not start (port in use, data directory locked,
                      // unwritable or corrupt, already running)
  kNotRunning = 6,    // stop: no running shardctl was found
};

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_EXIT_CODE_H_
