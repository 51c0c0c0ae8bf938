#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>

extern char** environ;

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<char*> ToArgv(const std::string& program, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  return argv;
}

// Decodes a waitpid() status into an exit code, 128+N for signal N.
int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Splits "host:port" (IPv4 or a name) for httplib.
std::pair<std::string, int> SplitHostPort(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  return {host_port.substr(0, colon), std::stoi(host_port.substr(colon + 1))};
}


}  // namespace

std::string ShardctlPath() { return SHARDCTL_BINARY; }

TempDir::TempDir() {
  char path[] = "/tmp/shardctl-test-XXXXXX";
  if (::mkdtemp(path) == nullptr) ADD_FAILURE() << "cannot create a temporary directory";
  path_ = path;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

ServerProcess::ServerProcess(const std::vector<std::string>& args, size_t max_file_bytes,
                             const std::string& program) {
  char stderr_template[] = "/tmp/shardctl-test-stderr-XXXXXX";
  int stderr_fd = ::mkstemp(stderr_template);
  stderr_path_ = stderr_template;
  int out[2];
  if (stderr_fd < 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "cannot create pipes: " << std::strerror(errno);
    return;
  }
  std::vector<char*> argv = ToArgv(program, args);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(stderr_fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::setenv("XDG_STATE_HOME", state_home_.path().c_str(), 1);
    if (max_file_bytes > 0) {
      rlimit limit{max_file_bytes, max_file_bytes};
      ::setrlimit(RLIMIT_FSIZE, &limit);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(stderr_fd);
  stdout_fd_ = out[0];
}

ServerProcess::~ServerProcess() {
  // A failing test shows what the server said: a sanitizer report, an error.
  if (::testing::Test::HasFailure()) {
    std::string err = Stderr();
    if (err.size() > 8000) err = "...\n" + err.substr(err.size() - 8000);
    if (!err.empty())
      std::fprintf(stderr, "--- stderr of shardctl (pid %d) ---\n%s\n", pid_, err.c_str());
  }
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  ::unlink(stderr_path_.c_str());
}

std::map<std::string, std::string> ServerProcess::WaitForListeners(
    size_t count, std::chrono::milliseconds timeout) {
  const std::string kMarker = " listening on ";
  std::map<std::string, std::string> listeners;
  auto deadline = Clock::now() + timeout;
  size_t scanned = 0;
  for (;;) {
    size_t newline;
    while ((newline = stdout_buffer_.find('\n', scanned)) != std::string::npos) {
      std::string line = stdout_buffer_.substr(scanned, newline - scanned);
      scanned = newline + 1;
      if (size_t at = line.find(kMarker); at != std::string::npos) {
        listeners[line.substr(0, at)] = line.substr(at + kMarker.size());
      }
    }
    if (listeners.size() >= count) return listeners;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return {};
    pollfd pfd{stdout_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[4096];
    ssize_t n = ::read(stdout_fd_, buffer, sizeof(buffer));
    if (n <= 0) return {};  // the process closed stdout: it exited
    stdout_buffer_.append(buffer, static_cast<size_t>(n));
  }
}

void ServerProcess::Signal(int signal_number) {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, signal_number);
}

std::optional<int> ServerProcess::WaitForExit(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  auto deadline = Clock::now() + timeout;
  do {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = ExitCodeOf(status);
      return exit_code_;
    }
    // Polling waitpid: a child's exit has no file descriptor to wait on.
    std::this_thread::sleep_for(5ms);
  } while (Clock::now() < deadline);
  return std::nullopt;
}

std::string ServerProcess::Stderr() const {
  std::ifstream file(stderr_path_);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

RunResult RunShardctl(const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& env) {
  RunResult result;
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "cannot create pipes";
    return result;
  }
  const std::string program = ShardctlPath();
  std::vector<char*> argv = ToArgv(program, args);
  TempDir state_home;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("XDG_STATE_HOME", state_home.path().c_str(), 1);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::unsetenv("SHARDCTL_URL");
    ::unsetenv("SHARDCTL_TOKEN");
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  auto deadline = Clock::now() + 30s;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_pipes = 2;
  while (open_pipes > 0 && Clock::now() < deadline) {
    if (::poll(fds, 2, 1000) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP)) == 0) continue;
      char buffer[4096];
      ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_pipes;
      }
    }
  }
  if (open_pipes > 0) {
    ::kill(pid, SIGKILL);
    ADD_FAILURE() << "shardctl did not finish within 30 s";
  }
  for (auto& fd : fds) {
    if (fd.fd >= 0) ::close(fd.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = ExitCodeOf(status);
  return result;
}

struct HttpConnection::Impl {
  explicit Impl(const std::string& host_port)
      : client(SplitHostPort(host_port).first, SplitHostPort(host_port).second) {}
  httplib::Client client;
};

HttpConnection::HttpConnection(const std::string& host_port)
    : impl_(std::make_unique<Impl>(host_port)) {
  impl_->client.set_tcp_nodelay(true);
  impl_->client.set_keep_alive(true);
  impl_->client.set_connection_timeout(5, 0);
  impl_->client.set_read_timeout(10, 0);
}

HttpConnection::~HttpConnection() = default;

namespace {
Reply ToReply(const httplib::Result& result) {
  if (!result) return {};
  return {result->status, result->body, result->get_header_value("Content-Type")};
}
}  // namespace

Reply HttpConnection::Get(const std::string& path) { return ToReply(impl_->client.Get(path)); }

Reply HttpConnection::Post(const std::string& path, const std::string& body) {
  return ToReply(impl_->client.Post(path, body, "application/json"));
}

int ConnectTo(const std::string& host_port) {
  auto [host, port] = SplitHostPort(host_port);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string ReadUntilClosed(int fd, std::chrono::milliseconds timeout) {
  std::string answer;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
    char buffer[4096];
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    answer.append(buffer, static_cast<size_t>(n));
  }
  return answer;
}

std::string SendRaw(const std::string& host_port, const std::string& request,
                    std::chrono::milliseconds timeout) {
  int fd = ConnectTo(host_port);
  if (fd < 0) return {};
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer = ReadUntilClosed(fd, timeout);
  ::close(fd);
  return answer;
}

RunResult RunCommand(const std::string& command) {
  RunResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

RunResult RunCommandOnTerminal(const std::string& command,
                               const std::map<std::string, std::string>& env) {
  std::string line;
  for (const auto& [name, value] : env) line += name + "='" + value + "' ";
  return RunCommand(line + "script -qec \"" + command + "\" /dev/null");
}

bool Reap(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return true;
    // Polling waitpid: a child's exit has no file descriptor to wait on.
    std::this_thread::sleep_for(5ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

std::string SourcePath(const std::string& relative) {
  // Joined with fs::path rather than string operator+: g++ 12 -O1 warns (-Warray-bounds, a false
  // positive) on a literal + "/" + string for some lengths of the source directory's name.
  return (std::filesystem::path(SHARDCTL_SOURCE_DIR) / relative).string();
}

std::string ReadExistingFile(const std::string& path) {
  std::ifstream file(path);
  EXPECT_TRUE(file) << "cannot read " << path;
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

HeldPort::HeldPort() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // Connections it accepts inherit SO_REUSEADDR, so their TIME_WAIT does not
  // keep a server from binding the port once it is released (Linux lets a
  // bind pass a TIME_WAIT socket only when both have the option). A listening
  // HeldPort still makes the port "in use" for every other socket.
  int yes = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd_, 16) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ADD_FAILURE() << "cannot hold a port: " << std::strerror(errno);
  }
  port_ = ntohs(address.sin_port);
}

HeldPort::~HeldPort() { ::close(fd_); }

int HeldPort::Accept(std::chrono::milliseconds timeout) {
  pollfd pfd{fd_, POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return -1;
  return ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
}

Cluster::Cluster(const std::vector<std::string>& extra_args, size_t shards) {
  std::vector<std::string> args = {
      "serve", "--port", "0", "--shard-base-port", "0", "--shards", std::to_string(shards)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<ServerProcess>(args);
  auto listeners = process_->WaitForListeners(shards + 1);
  if (listeners.empty()) {
    ADD_FAILURE() << "shardctl serve did not become ready; stderr:\n" << process_->Stderr();
    return;
  }
  aggregator_ = listeners["aggregator"];
  for (size_t i = 0; i < shards; ++i) shards_.push_back(listeners["shard " + std::to_string(i)]);
}

RunResult Cluster::Run(std::vector<std::string> args) const {
  args.push_back("--url");
  args.push_back(url());
  return RunShardctl(args);
}

std::map<std::string, int64_t> IncrementSpreadCounters(const std::string& host_port,
                                                       int increments) {
  HttpConnection http(host_port);
  std::map<std::string, int64_t> totals;
  for (int i = 0; i < increments; ++i) {
    std::string name = fmt::format("lb:{:03}", i * 37 % 80);
    int value = i * 53 % 120 - 40;
    Reply reply =
        http.Post("/increment", fmt::format(R"({{"value":{},"counter":"{}"}})", value, name));
    EXPECT_EQ(reply.status, 200) << reply.body;
    if (reply.status == 200) totals[name] += value;
  }
  return totals;
}

std::map<std::string, int64_t> IncrementSpreadCountersInBatches(const std::string& host_port,
                                                                int increments) {
  std::map<std::string, int64_t> totals;
  std::string json = R"({"increments":[)";
  std::string lines;
  for (int i = 0; i < increments; ++i) {
    std::string name = fmt::format("lb:{:03}", i * 37 % 80);
    int value = i * 53 % 120 - 40;
    totals[name] += value;
    if (i < increments / 2) {
      json += fmt::format(R"({}{{"counter":"{}","value":{}}})", i == 0 ? "" : ",", name, value);
    } else {
      lines += fmt::format("{} {}\n", name, value);
    }
  }
  HttpConnection http(host_port);
  Reply reply = http.Post("/increment", json + "]}");
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_TRUE(reply.body.starts_with(fmt::format(R"({{"applied":{},)", increments / 2)))
      << reply.body;
  char path[] = "/tmp/shardctl-pairs-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, lines.data(), lines.size()), static_cast<ssize_t>(lines.size()));
  ::close(fd);
  RunResult run = RunCommand(
      fmt::format("{} inc --stdin --url http://{} < {}", ShardctlPath(), host_port, path));
  ::unlink(path);
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out.rfind(fmt::format("counted {} values in ", increments - increments / 2), 0), 0u)
      << run.out;
  return totals;
}

void ExpectExactLeaderboardsAndPages(const std::string& host_port,
                                     const std::map<std::string, int64_t>& totals) {
  HttpConnection http(host_port);
  using Entries = std::vector<std::pair<std::string, int64_t>>;
  auto listing = [](Entries::const_iterator begin, Entries::const_iterator end,
                    const std::string& next) {
    std::string body = R"({"counters":[)";
    for (auto it = begin; it != end; ++it) {
      body += fmt::format(R"({}{{"counter":"{}","total":{}}})", it == begin ? "" : ",", it->first,
                          it->second);
    }
    return body + "]" + (next.empty() ? "" : R"(,"next":")" + next + "\"") + "}";
  };
  Entries ranked(totals.begin(), totals.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  for (size_t k : {1, 5, 79, 80, 200}) {
    auto shown = static_cast<ptrdiff_t>(std::min(k, ranked.size()));
    EXPECT_EQ(http.Get(fmt::format("/counters?top={}", k)).body,
              listing(ranked.begin(), ranked.begin() + shown, ""))
        << "top " << k;
  }
  const Entries by_name(totals.begin(), totals.end());
  for (size_t first = 0; first < by_name.size(); first += 7) {
    size_t last = std::min(first + 7, by_name.size());
    std::string after = first == 0 ? "" : "&after=" + by_name[first - 1].first;
    std::string next = last < by_name.size() ? by_name[last - 1].first : "";
    EXPECT_EQ(http.Get("/counters?prefix=lb:&limit=7" + after).body,
              listing(by_name.begin() + static_cast<ptrdiff_t>(first),
                      by_name.begin() + static_cast<ptrdiff_t>(last), next))
        << "page from " << first;
  }
}

}  // namespace shardctl::testing
