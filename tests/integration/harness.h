// Test harness for integration tests: runs the real shardctl binary as a
// child process, waits for its readiness lines, and talks HTTP to it.
// Not thread-safe: each test owns its processes.
#ifndef SHARDCTL_TESTS_INTEGRATION_HARNESS_H_
#define SHARDCTL_TESTS_INTEGRATION_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shardctl::testing {

using namespace std::chrono_literals;

// The path of the shardctl binary under test.
std::string ShardctlPath();

// A temporary directory, removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A running `shardctl ...` child: stdout is read for readiness lines, stderr
// goes to a temporary file. Its XDG_STATE_HOME is a temporary directory of
// its own, so a serve without --data-dir never touches the real one. The
// destructor kills it if it still runs.
class ServerProcess {
 public:
  // Starts `shardctl args...` (`program` is the binary under test unless
  // given: an installed copy, say). Fails the test (ADD_FAILURE) if it cannot.
  // With `max_file_bytes` > 0, the process may not write files larger than
  // that (RLIMIT_FSIZE): writes beyond fail as on a full disk.
  explicit ServerProcess(const std::vector<std::string>& args, size_t max_file_bytes = 0,
                         const std::string& program = ShardctlPath());
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Reads stdout until `count` lines "<name> listening on <host:port>" have
  // appeared. Returns name -> "host:port" (e.g. "shard 0" -> "127.0.0.1:3000"),
  // or an empty map if the process exited or `timeout` passed first.
  std::map<std::string, std::string> WaitForListeners(size_t count,
                                                      std::chrono::milliseconds timeout = 10s);

  void Signal(int signal_number);
  // Waits for the process to exit. Returns its exit code (128+N when killed
  // by signal N), or nullopt if it still runs after `timeout`.
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout);
  std::string Stderr() const;
  pid_t pid() const { return pid_; }

 private:
  TempDir state_home_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string stdout_buffer_;
  std::string stderr_path_;
  std::optional<int> exit_code_;
};

// The outcome of a shardctl run to completion.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `shardctl args...` to completion (killed after 30 s) with `env` added
// to the environment (and SHARDCTL_URL and SHARDCTL_TOKEN removed unless `env`
// sets them), with a temporary XDG_STATE_HOME as ServerProcess.
RunResult RunShardctl(const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& env = {});

// Runs the shell command `command` (through popen) to completion; `out`
// gets its stdout and stderr together.
RunResult RunCommand(const std::string& command);

// Runs the shell command `command` with a terminal as its stdout and stderr
// (through script(1)), with `env` added to the environment. The output is
// what the terminal showed.
RunResult RunCommandOnTerminal(const std::string& command,
                               const std::map<std::string, std::string>& env);

// An HTTP answer as a test sees it.
struct Reply {
  int status = 0;  // 0: no answer at all
  std::string body;
  std::string content_type;
};

// One keep-alive HTTP connection to "host:port".
class HttpConnection {
 public:
  explicit HttpConnection(const std::string& host_port);
  ~HttpConnection();
  Reply Get(const std::string& path);
  Reply Post(const std::string& path, const std::string& body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sends `request` bytes as they are on a fresh connection to "host:port" and
// returns everything the server sends back until it closes the connection or
// `timeout` passes.
std::string SendRaw(const std::string& host_port, const std::string& request,
                    std::chrono::milliseconds timeout = 3s);

// A TCP connection to "host:port" (an IPv4 address): its descriptor, or -1.
int ConnectTo(const std::string& host_port);

// Everything that arrives on `fd` until the peer closes it or `timeout`
// passes.
std::string ReadUntilClosed(int fd, std::chrono::milliseconds timeout);

// Waits up to `timeout` for the child `pid` to exit (and reaps it). Returns
// true if it did.
bool Reap(pid_t pid, std::chrono::milliseconds timeout);

// The path of `relative` (e.g. "README.md") in the source tree.
std::string SourcePath(const std::string& relative);
// The whole file; fails the test (EXPECT) if it cannot be read (for files that
// must exist; a test polling for a file reads it without this).
std::string ReadExistingFile(const std::string& path);

// Sends `increments` increments to counters "lb:000".."lb:079" through the
// aggregator at host:port, with values from -40 to 79 (so each counter gets
// parts on one to three shards, some negative), and returns each counter's
// total.
std::map<std::string, int64_t> IncrementSpreadCounters(const std::string& host_port,
                                                       int increments);
// The same counters and values, sent as batches of many counters: the first
// half as one POST /increment {"increments":[...]}, the rest as `COUNTER
// VALUE` lines through `shardctl inc --stdin` (text/plain batches).
std::map<std::string, int64_t> IncrementSpreadCountersInBatches(const std::string& host_port,
                                                                int increments);
// Checks GET /counters?top=K (several K) and every page of
// /counters?prefix=lb:&limit=7 at host:port against `totals`, exactly.
void ExpectExactLeaderboardsAndPages(const std::string& host_port,
                                     const std::map<std::string, int64_t>& totals);

// A TCP port on 127.0.0.1 held open (listening) until destroyed. Connections
// wait in its backlog unless the test accepts them.
class HeldPort {
 public:
  HeldPort();
  ~HeldPort();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The next connection, or -1 if none came within `timeout`.
  int Accept(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  int port_ = 0;
};

// `shardctl serve` with every listener on a free port, ready to use.
class Cluster {
 public:
  // Starts `shardctl serve --port 0 --shard-base-port 0 extra_args...`
  // (persisting into the process's own temporary state directory).
  explicit Cluster(const std::vector<std::string>& extra_args = {}, size_t shards = 3);
  // True once every listener announced itself.
  bool ready() const { return !aggregator_.empty(); }
  const std::string& aggregator() const { return aggregator_; }
  std::string url() const { return "http://" + aggregator_; }
  const std::string& shard(int i) const { return shards_.at(i); }
  ServerProcess& process() { return *process_; }
  // Runs `shardctl args... --url <this cluster>` to completion.
  RunResult Run(std::vector<std::string> args) const;

 private:
  std::unique_ptr<ServerProcess> process_;
  std::string aggregator_;
  std::vector<std::string> shards_;
};

}  // namespace shardctl::testing

#endif  // SHARDCTL_TESTS_INTEGRATION_HARNESS_H_
