// bench_probe_latency: one client that times each of its requests, back to back
// on one connection, for SECONDS, against
//   - http: a shardctl aggregator, in turn POST /increment
//     {"value":V,"counter":"probe"} with V = 1, 2, 3, ... (so that it reaches
//     every shard under value routing) and GET /total;
//   - redis: a redis-server, in turn INCR probe and GET probe.
// Prints one line per request: the Unix time it was sent (seconds, microsecond
// resolution) and how long its answer took (microseconds); a failed request is
// a line with latency -1. bench/leaderboard.sh uses it to find the longest
// pause in answering while a million windows (or keys) expire.
// Usage: bench_probe_latency http|redis HOST PORT SECONDS
// A benchmark helper, not part of shardctl.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <httplib.h>

namespace {

// A minimal RESP client: sends one command and reads one reply (a simple
// string, an error, an integer or a bulk string, which is all INCR and GET answer).
class RedisConnection {
 public:
  bool Connect(const char* host, int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, host, &address.sin_addr) != 1) return false;
    return ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  }
  ~RedisConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Returns true when the reply came and was not an error.
  bool Call(std::string_view command) {
    if (::send(fd_, command.data(), command.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(command.size())) {
      return false;
    }
    std::string line;
    if (!ReadLine(&line) || line.empty() || line[0] == '-') return false;
    if (line[0] != '$') return true;
    long length = std::atol(line.c_str() + 1);
    if (length < 0) return true;  // nil
    std::string payload;
    return ReadLine(&payload);
  }

 private:
  bool ReadLine(std::string* line) {
    for (;;) {
      if (size_t end = buffer_.find("\r\n"); end != std::string::npos) {
        *line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return true;
      }
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc == 5 ? argv[1] : "";
  if (mode != "http" && mode != "redis") {
    fmt::print(stderr, "usage: {} http|redis HOST PORT SECONDS\n", argv[0]);
    return 2;
  }
  const char* host = argv[2];
  const int port = std::atoi(argv[3]);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(std::atol(argv[4]));

  std::function<bool(long)> request;
  httplib::Client http(host, port);
  RedisConnection redis;
  if (mode == "http") {
    http.set_tcp_nodelay(true);
    http.set_keep_alive(true);
    http.set_read_timeout(30, 0);
    request = [&http](long i) {
      httplib::Result result =
          i % 2 == 0
              ? http.Post("/increment",
                          fmt::format(R"({{"value":{},"counter":"probe"}})", i / 2 % 3 + 1),
                          "application/json")
              : http.Get("/total");
      return result && result->status == 200;
    };
  } else {
    if (!redis.Connect(host, port)) {
      fmt::print(stderr, "cannot connect to redis at {}:{}: {}\n", host, port, std::strerror(errno));
      return 1;
    }
    request = [&redis](long i) {
      return redis.Call(i % 2 == 0 ? "*2\r\n$4\r\nINCR\r\n$5\r\nprobe\r\n"
                                   : "*2\r\n$3\r\nGET\r\n$5\r\nprobe\r\n");
    };
  }

  std::string out;
  long failures = 0;
  for (long i = 0; std::chrono::steady_clock::now() < end; ++i) {
    const double sent =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const auto start = std::chrono::steady_clock::now();
    const bool ok = request(i);
    const long micros = static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                              std::chrono::steady_clock::now() - start)
                                              .count());
    if (!ok) ++failures;
    out += fmt::format("{:.6f}\t{}\n", sent, ok ? micros : -1);
    if (out.size() > (1 << 16)) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return failures == 0 ? 0 : 1;
}
