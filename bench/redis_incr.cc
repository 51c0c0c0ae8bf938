// bench_redis_incr: a Redis load generator for bench/replication.sh. CONNECTIONS connections,
// driven by one thread (poll), each sending INCR and, with --wait, `WAIT 1 0` after every INCR,
// one command at a time: no pipelining, no MULTI. redis-benchmark sends only one command per
// request, so it cannot measure an increment acknowledged by a replica; this can, and measures
// INCR alone the same way so that the two differ only by the WAIT.
// Prints one line: `increments/s R (N increments in S s, C connections, incr|incr+wait)`.
// An increment counts once its INCR (with --wait: its WAIT, reporting at least one replica) is
// answered. An error reply or a closed connection ends the run with exit code 1.
// Usage: bench_redis_incr PORT CONNECTIONS SECONDS [--wait]
// A benchmark helper, not part of shardctl.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace {

constexpr std::string_view kIncr = "*2\r\n$4\r\nINCR\r\n$7\r\nbench:k\r\n";
constexpr std::string_view kWait = "*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$1\r\n0\r\n";

struct Connection {
  int fd = -1;
  bool waiting_for_wait = false;  // the command in flight is WAIT (else INCR)
  std::string out;                // what is left to send of the command in flight
  std::string in;                 // what has arrived of its reply
};

[[noreturn]] void Die(const std::string& message) {
  fmt::print(stderr, "bench_redis_incr: {}\n", message);
  std::exit(1);
}

int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) Die(fmt::format("socket: {}", std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 &&
      errno != EINPROGRESS) {
    Die(fmt::format("connect to 127.0.0.1:{}: {}", port, std::strerror(errno)));
  }
  return fd;  // the first send waits for POLLOUT, which also says the connect finished
}

// Sends what is left of the command in flight; false when the socket would block.
bool Flush(Connection& c) {
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)) return false;
    if (n < 0) Die(fmt::format("send: {}", std::strerror(errno)));
    c.out.erase(0, static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || (argc == 5 && std::string_view(argv[4]) != "--wait") || argc > 5) {
    fmt::print(stderr, "usage: {} PORT CONNECTIONS SECONDS [--wait]\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int connections = std::atoi(argv[2]);
  const double seconds = std::atof(argv[3]);
  const bool wait = argc == 5;
  if (port <= 0 || port > 65535 || connections < 1 || connections > 4096 || seconds <= 0) {
    fmt::print(stderr, "bench_redis_incr: bad PORT, CONNECTIONS or SECONDS\n");
    return 2;
  }

  std::vector<Connection> conns(static_cast<size_t>(connections));
  std::vector<pollfd> polled(conns.size());
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].fd = Connect(port);
    conns[i].out = kIncr;
    polled[i] = {conns[i].fd, POLLOUT, 0};
  }

  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  long increments = 0;
  char buffer[4096];
  while (Clock::now() < end) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    int ready = ::poll(polled.data(), polled.size(), static_cast<int>(left.count()) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) Die(fmt::format("poll: {}", std::strerror(errno)));
    for (size_t i = 0; i < conns.size(); ++i) {
      Connection& c = conns[i];
      if (polled[i].revents == 0) continue;
      if ((polled[i].revents & POLLOUT) != 0 && Flush(c)) polled[i].events = POLLIN;
      if ((polled[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n < 0) Die(fmt::format("recv: {}", std::strerror(errno)));
      if (n == 0) Die("the server closed a connection");
      c.in.append(buffer, static_cast<size_t>(n));
      size_t line_end = c.in.find("\r\n");
      if (line_end == std::string::npos) continue;  // the rest of the reply is still to come
      // One command is in flight per connection, and INCR and WAIT both answer an integer
      // (":N\r\n"), so the reply is the first line and nothing can follow it.
      std::string reply = c.in.substr(0, line_end);
      if (line_end + 2 != c.in.size() || reply.empty() || reply[0] != ':') {
        Die(fmt::format("unexpected reply to {}: {}", c.waiting_for_wait ? "WAIT" : "INCR", c.in));
      }
      c.in.clear();
      if (c.waiting_for_wait && std::atol(reply.c_str() + 1) < 1) {
        Die("WAIT 1 0 answered " + reply.substr(1) + " replicas");
      }
      if (wait && !c.waiting_for_wait) {
        c.waiting_for_wait = true;
        c.out = kWait;
      } else {
        ++increments;
        c.waiting_for_wait = false;
        c.out = kIncr;
      }
      polled[i].events = Flush(c) ? POLLIN : POLLOUT;
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  fmt::print("increments/s {:.1f} ({} increments in {:.3f} s, {} connections, {})\n",
             static_cast<double>(increments) / elapsed, increments, elapsed, connections,
             wait ? "incr+wait" : "incr");
  for (Connection& c : conns) ::close(c.fd);
  return 0;
}
