#include "net/http_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "net/request_framing.h"
#include "net/socket_io.h"

namespace shardctl::net {
namespace {

using Clock = std::chrono::steady_clock;

// An idle connection older than this is closed rather than reused: servers
// close idle keep-alive connections (shardctl after one second), and a request
// sent on a connection the server is closing fails with an unknown outcome.
constexpr auto kMaxIdle = std::chrono::milliseconds(500);
constexpr size_t kMaxIdleConnections = 256;
// An answer larger than this is not a shardctl answer.
constexpr size_t kMaxAnswerBytes = 64 * 1024 * 1024;

class Socket {
 public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up the descriptor, unclosed.
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

enum class ConnectError { kNone, kRefused, kTimedOut };

// Connects to host:port within `timeout`, trying each address the name has.
std::pair<Socket, ConnectError> Connect(const Url& url, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(url.port);
  if (::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found) != 0) {
    return {Socket(), ConnectError::kRefused};
  }
  auto deadline = Clock::now() + timeout;
  ConnectError error = ConnectError::kRefused;
  Socket connected;
  for (addrinfo* a = found; a != nullptr && !connected.valid(); a = a->ai_next) {
    Socket socket(
        ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (!socket.valid()) continue;
    if (::connect(socket.fd(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) continue;
      if (!Await(socket.fd(), POLLOUT, deadline)) {
        error = ConnectError::kTimedOut;
        continue;
      }
      int so_error = 0;
      socklen_t length = sizeof(so_error);
      ::getsockopt(socket.fd(), SOL_SOCKET, SO_ERROR, &so_error, &length);
      if (so_error != 0) continue;
    }
    int yes = 1;
    ::setsockopt(socket.fd(), IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    connected = std::move(socket);
  }
  ::freeaddrinfo(found);
  if (!connected.valid()) return {Socket(), error};
  return {std::move(connected), ConnectError::kNone};
}

// True if an idle keep-alive connection may still carry a request: the
// server has neither closed it (a server that stopped or died has) nor sent
// anything unasked.
bool StillOpen(int fd) {
  char byte;
  ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// The parts of an answer's header the client needs.
struct AnswerHead {
  int status = 0;
  std::optional<size_t> content_length;
  bool close = false;
  bool chunked = false;
};

// Parses an answer's status line and header lines (`header` ends with its
// blank line). Returns nullopt if it is not an HTTP/1.x answer.
std::optional<AnswerHead> ParseAnswerHead(std::string_view header) {
  AnswerHead head;
  size_t line_end = header.find("\r\n");
  std::string_view status_line = header.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ') {
    return std::nullopt;
  }
  std::string_view code = status_line.substr(9, 3);
  if (std::from_chars(code.data(), code.data() + 3, head.status).ptr != code.data() + 3) {
    return std::nullopt;
  }
  head.close = status_line[7] == '0';  // HTTP/1.0 closes unless told otherwise
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  ParseHeaderLines(header.substr(line_end + 2), /*drop_empty=*/false, &headers);
  for (const auto& [name, value] : headers) {
    if (EqualsIgnoringCase(name, "Content-Length")) {
      size_t length = 0;
      auto [end_of_number, error] =
          std::from_chars(value.data(), value.data() + value.size(), length);
      if (error != std::errc() || end_of_number != value.data() + value.size() ||
          length > kMaxAnswerBytes) {
        return std::nullopt;
      }
      head.content_length = length;
    } else if (EqualsIgnoringCase(name, "Connection")) {
      if (EqualsIgnoringCase(value, "close")) head.close = true;
      if (EqualsIgnoringCase(value, "keep-alive")) head.close = false;
    } else if (EqualsIgnoringCase(name, "Transfer-Encoding")) {
      head.chunked = true;
    }
  }
  return head;
}

}  // namespace

struct HttpClient::Pool {
  struct Idle {
    int fd;
    Clock::time_point since;
  };
  std::mutex mutex;
  std::vector<Idle> idle;  // most recently used last

  ~Pool() {
    for (const Idle& entry : idle) ::close(entry.fd);
  }
};

HttpClient::HttpClient(Url url, HttpClientOptions options)
    : url_(std::move(url)), options_(options), pool_(std::make_unique<Pool>()) {}

HttpClient::~HttpClient() = default;

core::Result<HttpReply> HttpClient::Get(const std::string& path, const HttpHeaders& headers) {
  return Send(false, path, {}, headers);
}

core::Result<HttpReply> HttpClient::Post(const std::string& path, const std::string& json_body,
                                         const HttpHeaders& headers) {
  return Send(true, path, json_body, headers);
}

core::Result<HttpReply> HttpClient::Send(bool post, const std::string& path,
                                         const std::string& body, const HttpHeaders& headers) {
  Socket socket;
  {
    std::lock_guard lock(pool_->mutex);
    auto now = Clock::now();
    while (!pool_->idle.empty()) {
      Pool::Idle entry = pool_->idle.back();
      pool_->idle.pop_back();
      if (now - entry.since < kMaxIdle && StillOpen(entry.fd)) {
        socket = Socket(entry.fd);
        break;
      }
      if (now - entry.since < kMaxIdle) {  // closed by the server (or it died)
        ::close(entry.fd);
        continue;
      }
      ::close(entry.fd);
      for (const Pool::Idle& older : pool_->idle) ::close(older.fd);  // older still
      pool_->idle.clear();
    }
  }
  if (!socket.valid()) {
    auto [connected, error] = Connect(url_, options_.connect_timeout);
    if (error == ConnectError::kTimedOut) {
      return core::Unavailable(fmt::format("cannot connect to {} (no answer within {} ms)",
                                           url_.ToString(), options_.connect_timeout.count()));
    }
    if (error != ConnectError::kNone) {
      return core::Unavailable(fmt::format(
          "cannot connect to {} (connection refused or host unreachable)", url_.ToString()));
    }
    socket = std::move(connected);
  }

  // The whole request in one send.
  std::string request = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\n", post ? "POST" : "GET", path,
                                    JoinHostPort(url_.host, url_.port));
  if (!options_.bearer_token.empty()) {
    fmt::format_to(std::back_inserter(request), "Authorization: Bearer {}\r\n",
                   options_.bearer_token);
  }
  for (const auto& [name, value] : headers) {
    fmt::format_to(std::back_inserter(request), "{}: {}\r\n", name, value);
  }
  if (post) {
    fmt::format_to(std::back_inserter(request),
                   "Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  }
  request += "\r\n";
  request += body;
  auto deadline = Clock::now() + options_.request_timeout;
  if (!SendAll(socket.fd(), request, deadline)) {
    return core::Unavailable(
        fmt::format("lost the connection to {} while sending the request", url_.ToString()));
  }

  auto unknown_outcome = [&] {
    return core::Status(
        core::Code::kTimeout,
        fmt::format("no complete answer from {} within {} ms (timed out or the connection was "
                    "lost; the request may or may not have been applied)",
                    url_.ToString(), options_.request_timeout.count()));
  };
  std::string answer;
  size_t header_end = std::string::npos;
  std::optional<AnswerHead> head;
  bool closed = false;
  for (;;) {
    while (!head && (header_end = FindHeaderEnd(answer)) != std::string::npos) {
      head = ParseAnswerHead(std::string_view(answer).substr(0, header_end));
      if (!head || head->chunked) {
        return core::Status(core::Code::kBadGateway,
                            fmt::format("{} did not answer in HTTP/1.1 as shardctl does (a status "
                                        "line and a Content-Length)",
                                        url_.ToString()));
      }
      if (head->status >= 100 && head->status < 200) {  // interim: the real one follows
        answer.erase(0, header_end);
        head.reset();
      }
    }
    if (head && head->content_length && answer.size() >= header_end + *head->content_length) break;
    if (closed) {
      if (head && !head->content_length) break;  // the body ends with the connection
      return unknown_outcome();
    }
    char chunk[16 * 1024];
    ssize_t n = ::recv(socket.fd(), chunk, sizeof(chunk), 0);
    if (n > 0) {
      answer.append(chunk, static_cast<size_t>(n));
      if (answer.size() > kMaxAnswerBytes) return unknown_outcome();
    } else if (n == 0) {
      closed = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!Await(socket.fd(), POLLIN, deadline)) return unknown_outcome();
      continue;
    } else {
      return unknown_outcome();
    }
  }
  size_t body_length = head->content_length.value_or(answer.size() - header_end);
  HttpReply reply{head->status, answer.substr(header_end, body_length)};
  if (!head->close && !closed && answer.size() == header_end + body_length) {
    std::lock_guard lock(pool_->mutex);
    if (pool_->idle.size() < kMaxIdleConnections) {
      pool_->idle.push_back({socket.Release(), Clock::now()});
    }
  }
  return reply;
}

}  // namespace shardctl::net
