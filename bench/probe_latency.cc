// bench_probe_latency: one client that times each of its requests, back to back
// on one connection. Two uses:
//   bench_probe_latency http|redis HOST PORT SECONDS
//     for SECONDS, against
//     - http: a shardctl aggregator, in turn POST /increment
//       {"value":V,"counter":"probe"} with V = 1, 2, 3, ... (so that it reaches
//       every shard under value routing) and GET /total;
//     - redis: a redis-server, in turn INCR probe and GET probe.
//     Prints one line per request: the Unix time it was sent (seconds,
//     microsecond resolution) and how long its answer took (microseconds); a
//     failed request is a line with latency -1. bench/leaderboard.sh uses it to
//     find the longest pause in answering while a million windows (or keys)
//     expire.
//   bench_probe_latency get HOST PORT COUNT PATH
//   bench_probe_latency command HOST PORT COUNT WORD...
//     the same request COUNT times: GET PATH (HTTP/1.1, kept alive) or one
//     Redis command, each answer read whole (its Content-Length; every element
//     of a RESP reply). The same client code both ways, so that a comparison of
//     the two servers is not one of two clients. Prints "MEDIAN P99 MAX" in
//     microseconds (0.1 us resolution); exits 1 on any failed request or answer
//     other than 200 (or a Redis error).
// A benchmark helper, not part of shardctl.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

namespace {

// One TCP connection with a read buffer: a minimal HTTP/1.1 and RESP client.
class Connection {
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
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool Send(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Reads one RESP reply whole (arrays element by element). Returns true when
  // it came and was not an error.
  bool ReadResp() {
    std::string line;
    if (!ReadLine(&line) || line.empty() || line[0] == '-') return false;
    const long n = std::atol(line.c_str() + 1);
    switch (line[0]) {
      case '$': return n < 0 || Skip(static_cast<size_t>(n) + 2);  // the payload and its CRLF
      case '*':
        for (long i = 0; i < n; ++i) {
          if (!ReadResp()) return false;
        }
        return true;
      default:  // '+' or ':'
        return true;
    }
  }
  // Reads one HTTP/1.1 answer whole, by its Content-Length. Returns true for
  // a 200.
  bool ReadHttp() {
    std::string line;
    if (!ReadLine(&line) || line.compare(0, 12, "HTTP/1.1 200") != 0) return false;
    size_t length = 0;
    for (;;) {
      if (!ReadLine(&line)) return false;
      if (line.empty()) break;
      std::string name = line.substr(0, line.find(':'));
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (name == "content-length") {
        length = static_cast<size_t>(std::atol(line.c_str() + name.size() + 1));
      }
    }
    return Skip(length);
  }

 private:
  bool Fill() {
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
  bool ReadLine(std::string* line) {
    for (;;) {
      if (size_t end = buffer_.find("\r\n", start_); end != std::string::npos) {
        line->assign(buffer_, start_, end - start_);
        start_ = end + 2;
        return true;
      }
      Compact();
      if (!Fill()) return false;
    }
  }
  bool Skip(size_t bytes) {
    while (buffer_.size() - start_ < bytes) {
      bytes -= buffer_.size() - start_;
      buffer_.clear();
      start_ = 0;
      if (!Fill()) return false;
    }
    start_ += bytes;
    return true;
  }
  void Compact() {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  int fd_ = -1;
  std::string buffer_;
  size_t start_ = 0;  // where the unread part of buffer_ begins
};

// A RESP command of `words`.
std::string RespCommand(const std::vector<std::string_view>& words) {
  std::string command = fmt::format("*{}\r\n", words.size());
  for (std::string_view word : words) command += fmt::format("${}\r\n{}\r\n", word.size(), word);
  return command;
}

// The `get` and `command` uses: one request COUNT times, "MEDIAN P99 MAX" (us).
int Repeat(std::string_view mode, int argc, char** argv) {
  const long count = argc >= 6 ? std::atol(argv[4]) : 0;
  if (count < 1 || (mode == "get" && argc != 6)) {
    fmt::print(stderr,
               "usage: {0} get HOST PORT COUNT PATH\n       {0} command HOST PORT COUNT WORD...\n",
               argv[0]);
    return 2;
  }
  Connection connection;
  if (!connection.Connect(argv[2], std::atoi(argv[3]))) {
    fmt::print(stderr, "cannot connect to {}:{}: {}\n", argv[2], argv[3], std::strerror(errno));
    return 1;
  }
  std::string request;
  if (mode == "get") {
    request = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", argv[5], argv[2]);
  } else {
    request = RespCommand(std::vector<std::string_view>(argv + 5, argv + argc));
  }
  std::vector<double> micros;
  micros.reserve(static_cast<size_t>(count));
  for (long i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const bool ok =
        connection.Send(request) && (mode == "get" ? connection.ReadHttp() : connection.ReadResp());
    const auto took = std::chrono::steady_clock::now() - start;
    if (!ok) {
      fmt::print(stderr, "request {} failed or was refused\n", i + 1);
      return 1;
    }
    micros.push_back(std::chrono::duration<double, std::micro>(took).count());
  }
  std::sort(micros.begin(), micros.end());
  const auto at = [&micros](double q) {
    return micros[std::min(micros.size() - 1,
                           static_cast<size_t>(q * static_cast<double>(micros.size())))];
  };
  fmt::print("{:.1f} {:.1f} {:.1f}\n", at(0.5), at(0.99), micros.back());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view first = argc > 1 ? argv[1] : "";
  if (first == "get" || first == "command") return Repeat(first, argc, argv);
  const std::string_view mode = argc == 5 ? first : "";
  if (mode != "http" && mode != "redis") {
    fmt::print(stderr, "usage: {} http|redis HOST PORT SECONDS\n", argv[0]);
    return 2;
  }
  const char* host = argv[2];
  const int port = std::atoi(argv[3]);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(std::atol(argv[4]));

  std::function<bool(long)> request;
  httplib::Client http(host, port);
  Connection redis;
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
      return redis.Send(i % 2 == 0 ? "*2\r\n$4\r\nINCR\r\n$5\r\nprobe\r\n"
                                   : "*2\r\n$3\r\nGET\r\n$5\r\nprobe\r\n") &&
             redis.ReadResp();
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
