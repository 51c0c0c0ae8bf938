#include "cmd/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

namespace shardctl::cmd {
namespace {

int g_ready_fd = -1;  // the daemon's end of the pipe to the starting process

// True if `pid` runs shardctl and has not exited (a zombie has).
bool RunsShardctl(pid_t pid) {
  // /proc/PID/stat: "PID (COMM) STATE ..."; COMM may hold spaces and parens.
  std::ifstream file(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  std::getline(file, stat);
  size_t open = stat.find('(');
  size_t close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 >= stat.size()) {
    return false;
  }
  char state = stat[close + 2];
  return stat.substr(open + 1, close - open - 1) == "shardctl" && state != 'Z' && state != 'X';
}

// In the starting process: waits for the daemon's one byte, its exit code
// (0: ready), and exits with it. The daemon already printed why it failed.
[[noreturn]] void AwaitDaemon(int read_fd) {
  unsigned char code = 5;
  ssize_t got;
  do {
    got = ::read(read_fd, &code, 1);
  } while (got < 0 && errno == EINTR);
  if (got != 1) {
    std::fputs("shardctl: error: the daemon exited before it was ready\n", stderr);
    code = 5;
  }
  std::fflush(stdout);
  std::_Exit(code);
}

}  // namespace

std::string DefaultPidFile() {
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime != nullptr && *runtime) {
    return std::string(runtime) + "/shardctl.pid";
  }
  if (::geteuid() == 0) return "/run/shardctl.pid";
  return fmt::format("/tmp/shardctl-{}.pid", ::geteuid());
}

std::optional<pid_t> LiveShardctlPid(const std::string& path) {
  std::ifstream file(path);
  long pid = 0;
  if (!(file >> pid) || pid <= 0) return std::nullopt;
  if (!RunsShardctl(static_cast<pid_t>(pid))) return std::nullopt;
  return static_cast<pid_t>(pid);
}

core::Status WritePidFile(const std::string& path) {
  std::string temporary = fmt::format("{}.{}.tmp", path, ::getpid());
  {
    std::ofstream file(temporary, std::ios::trunc);
    file << ::getpid() << "\n";
    if (!file.flush()) {
      return core::InvalidArgument(
          fmt::format("cannot write the pid file {}: {}", path, std::strerror(errno)));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::string reason = std::strerror(errno);
    std::remove(temporary.c_str());
    return core::InvalidArgument(fmt::format("cannot write the pid file {}: {}", path, reason));
  }
  return {};
}

void RemovePidFile(const std::string& path) {
  std::ifstream file(path);
  long pid = 0;
  if (file >> pid && pid == ::getpid()) std::remove(path.c_str());
}

void Daemonize() {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::perror("shardctl: error: cannot daemonize: pipe");
    std::_Exit(5);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t child = ::fork();
  if (child < 0) {
    std::perror("shardctl: error: cannot daemonize: fork");
    std::_Exit(5);
  }
  if (child > 0) {
    ::close(pipe_fds[1]);
    ::waitpid(child, nullptr, 0);  // the intermediate child exits at once
    AwaitDaemon(pipe_fds[0]);
  }
  ::close(pipe_fds[0]);
  ::setsid();
  pid_t daemon = ::fork();
  if (daemon < 0) std::_Exit(5);
  if (daemon > 0) std::_Exit(0);  // the daemon is not a session leader: no terminal again
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::close(null_fd);
  }
  if (::chdir("/") != 0) {
    // Paths were made absolute before; staying put is harmless.
  }
  g_ready_fd = pipe_fds[1];
}

void ReportStarted(int exit_code) {
  if (g_ready_fd < 0) return;
  std::fflush(stdout);
  std::fflush(stderr);
  auto code = static_cast<unsigned char>(exit_code);
  while (::write(g_ready_fd, &code, 1) < 0 && errno == EINTR) {
  }
  ::close(g_ready_fd);
  g_ready_fd = -1;
}

}  // namespace shardctl::cmd
