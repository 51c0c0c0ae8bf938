#include "net/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

#include "core/protocol.h"
#include "net/auth.h"
#include "net/request_framing.h"
#include "net/url.h"

namespace shardctl::net {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kJson[] = "application/json";
constexpr int kListenBacklog = 1024;
// A refused oversized body is still read (and dropped) up to this size, so the
// client, which sends the whole body before it reads, gets the 413 rather
// than a reset connection. Larger bodies get the 413 and the connection closed.
constexpr uint64_t kMaxDrainBytes = 1024 * 1024;
// How often connections are checked for having outlived their deadline.
constexpr auto kSweepInterval = std::chrono::milliseconds(100);
constexpr size_t kReadChunk = 16 * 1024;

// Answers with an error and closes the connection afterwards. Used when the
// request body was left unread, so the connection cannot be trusted for
// another request (the request-smuggling guard). A content provider that
// fails after writing the whole body is httplib 0.11's only way to do that.
void RejectAndClose(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_header("Connection", "close");
  auto body = std::make_shared<std::string>(core::FormatError(message));
  res.set_content_provider(body->size(), kJson, [body](size_t, size_t, httplib::DataSink& sink) {
    sink.write(body->data(), body->size());
    return false;
  });
}

std::string_view DefaultMessage(int status) {
  switch (status) {
    case 400: return "malformed HTTP request";
    case 404: return "no such path";
    case 405: return "method not allowed on this path";
    case 413: return "the request body is too large";
    case 414: return "the request URI is too long";
    case 416: return "range requests are not supported";
    default: return "the request failed";
  }
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    default: return "Error";
  }
}

// A whole error answer that closes the connection, for the refusals the
// server makes before httplib sees a request.
std::string ClosingErrorAnswer(int status, std::string_view message) {
  std::string body = core::FormatError(message);
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
      status, ReasonPhrase(status), kJson, body.size(), body);
}

std::pair<std::string, int> AddressOf(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (address.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(address);
    ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof(text));
    port = ntohs(in.sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(address);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof(text));
    port = ntohs(in6.sin6_port);
  }
  return {text, port};
}

// One client connection. `fd` and the addresses are fixed; `owned`,
// `deadline` and `expired` are guarded by Gate::mutex_; everything else
// belongs to the worker that owns the connection (or to nobody while it
// waits in epoll).
struct Connection {
  int fd = -1;
  std::string remote_ip, local_ip;
  int remote_port = 0, local_port = 0;

  bool owned = false;
  bool expired = false;
  Clock::time_point deadline;

  std::string received;       // bytes of requests not yet served
  size_t scanned = 0;         // bytes of `received` known to hold no header end
  size_t needed = 0;          // once the header is in: the whole request's length
  Clock::time_point started;  // when the first byte of the pending request came
  bool refused = false;       // a refused body is being read and dropped
  bool continued = false;     // "100 Continue" was sent for the pending request
  uint64_t discard = 0;       // bytes of it still to come

  std::string* capture = nullptr;  // for tests: answers go here, not to `fd`
};

// httplib's view of one framed request: reads come from the bytes already
// received (and end there), writes go to the socket within a deadline.
class FramedStream : public httplib::Stream {
 public:
  FramedStream(const Connection& connection, std::string_view request,
               std::chrono::milliseconds write_timeout)
      : connection_(connection), request_(request), write_deadline_(Clock::now() + write_timeout) {}

  bool is_readable() const override { return position_ < request_.size(); }
  bool is_writable() const override { return !write_failed_; }

  ssize_t read(char* ptr, size_t size) override {
    size_t n = std::min(size, request_.size() - position_);
    std::memcpy(ptr, request_.data() + position_, n);
    position_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (connection_.capture != nullptr) {
      connection_.capture->append(ptr, size);
      return static_cast<ssize_t>(size);
    }
    size_t sent = 0;
    while (sent < size && !write_failed_) {
      ssize_t n = ::send(connection_.fd, ptr + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(write_deadline_ - Clock::now());
        pollfd pfd{connection_.fd, POLLOUT, 0};
        if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
          write_failed_ = true;  // the client does not read its answer
        }
      } else {
        write_failed_ = true;
      }
    }
    return write_failed_ ? -1 : static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = connection_.remote_ip;
    port = connection_.remote_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = connection_.local_ip;
    port = connection_.local_port;
  }
  socket_t socket() const override { return connection_.fd; }

 private:
  const Connection& connection_;
  std::string_view request_;
  size_t position_ = 0;
  Clock::time_point write_deadline_;
  bool write_failed_ = false;
};

// Runs each accepted connection's task on the accept thread itself: the task
// (GatedServer::process_and_close_socket) only registers the connection.
class InlineQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

// httplib::Server whose connections wait in epoll until a request has fully
// arrived; worker threads then take turns at epoll_wait (each connection is
// armed EPOLLONESHOT, so one worker at a time owns it) and call httplib's
// process_request on the received bytes. httplib never reads a socket itself,
// so none of its blocking reads or select() calls (which cannot take a file
// descriptor past FD_SETSIZE) are ever reached.
class GatedServer : public httplib::Server {
 public:
  explicit GatedServer(const HttpServerOptions& options) : options_(options) {
    new_task_queue = [] { return new InlineQueue; };
  }
  ~GatedServer() override { StopWorkers(); }

  // httplib listens with a backlog of 5, which drops connections under any
  // real load.
  bool DeepenBacklog() { return ::listen(svr_sock_, kListenBacklog) == 0; }

  // Creates the epoll set and the workers. Returns false if the system refuses.
  bool StartWorkers();
  // Finishes requests in flight, closes every connection, joins the workers.
  void StopWorkers();

  // Serves `bytes` as if one connection had sent them and then closed its
  // sending side; returns every byte the server would have sent back.
  std::string ServeBytes(std::string_view bytes);

 private:
  // Called by httplib on the accept thread for each new connection.
  bool process_and_close_socket(socket_t sock) override;

  void WorkerLoop();
  void SweepLoop();
  // Reads what has arrived and serves every complete request. Returns true to
  // keep the connection, false to close it.
  bool Serve(Connection& connection);
  // Serves every complete request in connection.received. Returns false when
  // the connection must close.
  bool ServeReceived(Connection& connection);
  bool ServeOne(Connection& connection, size_t length);
  void Rearm(Connection& connection);
  void Close(Connection* connection);

  const HttpServerOptions options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // readable once stopping: wakes every worker
  std::atomic<bool> stopping_{false};

  std::mutex mutex_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  std::condition_variable sweep_wakeup_;
  bool sweeper_stop_ = false;

  std::vector<std::thread> workers_;
  std::thread sweeper_;
};

bool GatedServer::StartWorkers() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0) return false;
  epoll_event wake{};
  wake.events = EPOLLIN;  // level-triggered: once written, every worker sees it
  wake.data.ptr = nullptr;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake) != 0) return false;
  for (int i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  sweeper_ = std::thread([this] { SweepLoop(); });
  return true;
}

void GatedServer::StopWorkers() {
  if (stopping_.exchange(true)) return;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(wake_fd_, &one, sizeof(one));
  }
  for (std::thread& worker : workers_) worker.join();
  if (sweeper_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      sweeper_stop_ = true;
    }
    sweep_wakeup_.notify_one();
    sweeper_.join();
  }
  for (auto& [pointer, connection] : connections_) ::close(connection->fd);
  connections_.clear();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

bool GatedServer::process_and_close_socket(socket_t sock) {
  // Connections never meet select(), so they can live above FD_SETSIZE; that
  // keeps the low descriptors free for what does use select() (httplib's
  // client, in an aggregator reaching its shards over HTTP).
  int high = ::fcntl(sock, F_DUPFD_CLOEXEC, FD_SETSIZE);
  if (high >= 0) {
    ::close(sock);
    sock = high;
  }
  auto connection = std::make_unique<Connection>();
  connection->fd = sock;
  int yes = 1;
  ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getpeername(sock, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    std::tie(connection->remote_ip, connection->remote_port) = AddressOf(address);
  }
  length = sizeof(address);
  if (::getsockname(sock, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    std::tie(connection->local_ip, connection->local_port) = AddressOf(address);
  }

  std::lock_guard lock(mutex_);  // see Rearm()
  if (stopping_ || connections_.size() >= options_.max_connections) {
    ::close(sock);
    return false;
  }
  connection->deadline = Clock::now() + options_.keep_alive_timeout;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
  event.data.ptr = connection.get();
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, sock, &event) != 0) {
    ::close(sock);
    return false;
  }
  connections_.emplace(connection.get(), std::move(connection));
  return true;
}

void GatedServer::WorkerLoop() {
  for (;;) {
    epoll_event event{};
    int n = ::epoll_wait(epoll_fd_, &event, 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || event.data.ptr == nullptr) return;  // stopping (or epoll broke)
    auto* connection = static_cast<Connection*>(event.data.ptr);
    {
      std::lock_guard lock(mutex_);
      connection->owned = true;
    }
    if (Serve(*connection)) {
      Rearm(*connection);
    } else {
      Close(connection);
    }
  }
}

void GatedServer::SweepLoop() {
  std::unique_lock lock(mutex_);
  while (!sweep_wakeup_.wait_for(lock, kSweepInterval, [this] { return sweeper_stop_; })) {
    auto now = Clock::now();
    for (auto& [pointer, connection] : connections_) {
      if (connection->owned || connection->expired || connection->deadline > now) continue;
      // Not owned: no worker touches `received` until the shutdown below wakes one.
      if (!connection->received.empty() || connection->refused) {
        std::string answer = ClosingErrorAnswer(
            408, fmt::format("the request did not arrive within {} ms; send it whole, promptly",
                             options_.read_timeout.count()));
        [[maybe_unused]] ssize_t sent =
            ::send(connection->fd, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      }
      // Makes the socket readable (end of file), so a worker closes it.
      ::shutdown(connection->fd, SHUT_RDWR);
      connection->expired = true;
    }
  }
}

bool GatedServer::Serve(Connection& c) {
  bool end_of_file = false;
  const size_t max_buffered = options_.max_header_bytes + options_.max_body_bytes;
  while (c.received.size() < max_buffered) {
    char chunk[kReadChunk];
    ssize_t n = ::recv(c.fd, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n > 0) {
      auto size = static_cast<size_t>(n);
      if (c.refused) {
        c.discard -= std::min<uint64_t>(c.discard, size);
      } else {
        if (c.received.empty()) c.started = Clock::now();
        c.received.append(chunk, size);
      }
    } else if (n == 0) {
      end_of_file = true;
      break;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    } else {
      return false;
    }
  }
  if (c.refused) return c.discard > 0 && !end_of_file && !stopping_;
  return ServeReceived(c) && !end_of_file && !stopping_;
}

std::string GatedServer::ServeBytes(std::string_view bytes) {
  std::string answers;
  Connection c;
  c.capture = &answers;
  c.received = bytes;
  ServeReceived(c);
  return answers;
}

bool GatedServer::ServeReceived(Connection& c) {
  while (!c.received.empty()) {
    // Cheap tests first, so that a request dribbled in a byte at a time is
    // not framed again from its start on every byte.
    if (c.needed > c.received.size()) break;
    if (c.needed == 0 && c.received.size() <= options_.max_header_bytes &&
        FindHeaderEnd(c.received, c.scanned) == std::string::npos) {
      c.scanned = c.received.size();
      break;
    }
    RequestFrame frame =
        FrameRequest(c.received, options_.max_header_bytes, options_.max_body_bytes);
    if (frame.kind == RequestFrame::Kind::kIncomplete) {
      c.needed = frame.length;
      // A client that sent "Expect: 100-continue" (curl does, for larger
      // bodies) waits for this before its body; httplib would send its own
      // only once the body is in. (A second 100 later is allowed: RFC 9110
      // section 15.2.)
      if (frame.length > 0 && !c.continued && ExpectsContinue(c.received)) {
        c.continued = true;
        constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        if (c.capture != nullptr) {
          c.capture->append(kContinue);
        } else {
          ::send(c.fd, kContinue.data(), kContinue.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
      }
      break;
    }
    if (frame.kind == RequestFrame::Kind::kComplete) {
      bool keep = ServeOne(c, frame.length);
      c.received.erase(0, frame.length);
      c.scanned = 0;
      c.needed = 0;
      c.continued = false;
      c.started = Clock::now();
      if (!keep) return false;
      continue;
    }
    // Refused before httplib sees it: answer, then close.
    std::string answer;
    if (frame.kind == RequestFrame::Kind::kHeaderTooLarge) {
      answer = ClosingErrorAnswer(431, fmt::format("the request header is larger than {} bytes",
                                                   options_.max_header_bytes));
    } else if (frame.kind == RequestFrame::Kind::kBadLength) {
      answer = ClosingErrorAnswer(400, "Content-Length must be one plain decimal number");
    } else if (frame.kind == RequestFrame::Kind::kBadHeader) {
      answer = ClosingErrorAnswer(
          400,
          "malformed request line or header: lines end in CRLF, names are tokens "
          "followed by a colon, no control characters, no folded lines");
    } else if (frame.kind == RequestFrame::Kind::kRange) {
      answer = ClosingErrorAnswer(416, "range requests are not supported");
    } else {
      answer = ClosingErrorAnswer(
          413, fmt::format("the request body is larger than {} bytes", options_.max_body_bytes));
    }
    if (c.capture != nullptr) {
      c.capture->append(answer);
    } else {
      [[maybe_unused]] ssize_t sent =
          ::send(c.fd, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    if (frame.kind != RequestFrame::Kind::kBodyTooLarge || frame.body_bytes > kMaxDrainBytes) {
      return false;
    }
    // The client sends the whole body before it reads the answer: read and
    // drop the rest of it, then close.
    c.refused = true;
    uint64_t buffered = c.received.size() - frame.length;
    c.discard = frame.body_bytes - std::min<uint64_t>(buffered, frame.body_bytes);
    c.received.clear();
    return c.discard > 0;
  }
  return true;
}

bool GatedServer::ServeOne(Connection& c, size_t length) {
  FramedStream stream(c, std::string_view(c.received).substr(0, length), options_.write_timeout);
  bool connection_closed = false;
  bool stopping = stopping_;
  // Connection: close in the answer when stopping.
  bool ok = process_request(stream, /*close_connection=*/stopping, connection_closed, nullptr);
  return ok && !connection_closed && !stopping;
}

void GatedServer::Rearm(Connection& c) {
  std::unique_ptr<Connection> failed;
  {
    // Under the mutex, which the next owner takes too: whatever this worker
    // did to the connection happens before that owner touches it.
    std::lock_guard lock(mutex_);
    c.owned = false;
    if (c.received.empty() && !c.refused) {
      c.deadline = Clock::now() + options_.keep_alive_timeout;
    } else {
      c.deadline = c.started + options_.read_timeout;
    }
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    event.data.ptr = &c;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &event) == 0) return;
    auto it = connections_.find(&c);
    failed = std::move(it->second);
    connections_.erase(it);
  }
  ::close(failed->fd);
}

void GatedServer::Close(Connection* connection) {
  std::unique_ptr<Connection> owned;
  {
    std::lock_guard lock(mutex_);
    auto it = connections_.find(connection);
    if (it == connections_.end()) return;
    owned = std::move(it->second);
    connections_.erase(it);
  }
  // Closed only once out of the table, so that a new connection given the
  // same descriptor number is never mistaken for this one.
  ::close(owned->fd);
}

}  // namespace

std::string_view HttpRequest::body() const { return request_.body; }

std::optional<std::string> HttpRequest::Param(const std::string& name) const {
  if (!request_.has_param(name.c_str())) return std::nullopt;
  return request_.get_param_value(name.c_str());
}

std::vector<std::string> HttpRequest::HeaderValues(const std::string& name) const {
  std::vector<std::string> values;
  auto [begin, end] = request_.headers.equal_range(name);  // a case-insensitive multimap
  for (auto it = begin; it != end; ++it) values.push_back(it->second);
  return values;
}

int HttpStatusFor(core::Code code) {
  switch (code) {
    case core::Code::kOk: return 200;
    case core::Code::kInvalidArgument: return 400;
    case core::Code::kOutOfRange: return 422;
    case core::Code::kKeyReused: return 422;
    case core::Code::kInProgress: return 409;
    case core::Code::kInternal: return 500;
    case core::Code::kBadGateway: return 502;
    case core::Code::kUnavailable: return 503;
    case core::Code::kTimeout: return 504;
  }
  return 500;
}

HttpResponse ErrorResponse(const core::Status& status) {
  return {HttpStatusFor(status.code()), core::FormatError(status.message())};
}

struct HttpServer::Impl {
  explicit Impl(HttpServerOptions server_options)
      : options(std::move(server_options)), server(options) {}

  HttpServerOptions options;
  GatedServer server;
  // path -> method -> handler; fixed before Listen(), read-only afterwards.
  std::map<std::string, std::map<std::string, HttpHandler>> routes;
  std::thread listener;
  std::atomic<bool> listener_done{false};
  int port = 0;

  void Configure();
  std::string AllowedMethods(const std::string& path) const;
};

// When the request this worker thread serves was routed, for the access log
// (a request is served start to end on one worker).
thread_local std::chrono::steady_clock::time_point request_started;

void HttpServer::Impl::Configure() {
  server.set_tcp_nodelay(true);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second
  // server bind the same port silently and split the traffic.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // Announced in the Keep-Alive header; the gate enforces them.
  server.set_keep_alive_max_count(1u << 30);
  server.set_keep_alive_timeout(
      std::chrono::duration_cast<std::chrono::seconds>(options.keep_alive_timeout).count());
  server.set_payload_max_length(options.max_body_bytes);

  if (options.access_log) {
    server.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      auto took = std::chrono::steady_clock::now() - request_started;
      options.access_log(fmt::format(
          "{} \"{} {}\" {} {} {:.2f}ms", JoinHostPort(req.remote_addr, req.remote_port),
          req.method, req.path, res.status, res.body.size(),
          std::chrono::duration<double, std::milli>(took).count()));
    });
  }

  // Guards that run before the request is routed.
  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    request_started = std::chrono::steady_clock::now();
    if (req.has_header("Transfer-Encoding")) {
      RejectAndClose(res, 400,
                     "Transfer-Encoding is not accepted; send the body with a Content-Length");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.has_header("Content-Encoding")) {
      RejectAndClose(res, 415, "compressed request bodies are not accepted");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.get_header_value_count("Content-Length") > 1) {
      RejectAndClose(res, 400, "more than one Content-Length header");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!options.bearer_token.empty() &&
        std::find(options.open_paths.begin(), options.open_paths.end(), req.path) ==
            options.open_paths.end() &&
        (req.get_header_value_count("Authorization") != 1 ||
         !BearerTokenMatches(req.get_header_value("Authorization"), options.bearer_token))) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content(
          core::FormatError(req.has_header("Authorization")
                                ? "the bearer token is wrong"
                                : "this server needs a token: send Authorization: Bearer <token>"),
          kJson);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Every error httplib produces on its own (404, 400, 413, ...) gets a JSON
  // body; a 404 on a known path with another method becomes a 405.
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || res.content_provider_) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        if (res.status == 404 && routes.count(req.path) > 0) {
          res.status = 405;
          res.set_header("Allow", AllowedMethods(req.path));
        }
        std::string message(DefaultMessage(res.status));
        if (res.status == 404) message = fmt::format("no such path: {}", req.path);
        if (res.status == 405) {
          message = fmt::format("{} is not allowed on {}; use {}", req.method, req.path,
                                AllowedMethods(req.path));
        }
        res.set_content(core::FormatError(message), kJson);
        return httplib::Server::HandlerResponse::Handled;
      }));

  // Exceptions from handlers become a plain 500, never a leaked message.
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content(core::FormatError("internal error while serving the request"), kJson);
      });
}

std::string HttpServer::Impl::AllowedMethods(const std::string& path) const {
  std::string allowed;
  for (const auto& [method, handler] : routes.at(path)) {
    allowed += allowed.empty() ? method : ", " + method;
  }
  return allowed;
}

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->Configure();
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(const std::string& method, const std::string& path, HttpHandler handler) {
  impl_->routes[path][method] = handler;
  auto adapter = [handler = std::move(handler)](const httplib::Request& req,
                                                httplib::Response& res) {
    HttpResponse response = handler(HttpRequest(req));
    res.status = response.status;
    res.set_content(std::move(response.body), kJson);
  };
  // httplib matches patterns as regular expressions; our paths are plain.
  if (method == "GET") {
    impl_->server.Get(path, adapter);
  } else if (method == "POST") {
    impl_->server.Post(path, adapter);
  }
}

core::Status HttpServer::Listen(const std::string& host, int port) {
  errno = 0;
  int bound = -1;
  if (port == 0) {
    bound = impl_->server.bind_to_any_port(host);
  } else if (impl_->server.bind_to_port(host, port)) {
    bound = port;
  }
  if (bound < 0) {
    int error = errno;
    std::string why = error == 0 ? "the address is not available here" : std::strerror(error);
    if (error == EADDRINUSE) why = "the port is already in use (is another shardctl running?)";
    return core::Unavailable(fmt::format("cannot listen on {}: {}", JoinHostPort(host, port), why));
  }
  impl_->port = bound;
  impl_->server.DeepenBacklog();
  if (!impl_->server.StartWorkers()) {
    return core::Unavailable(
        fmt::format("cannot serve on {}: {}", JoinHostPort(host, bound), std::strerror(errno)));
  }
  impl_->listener = std::thread([this] {
    impl_->server.listen_after_bind();
    impl_->listener_done = true;
  });
  // stop() is ignored until the accept loop runs, so wait for it.
  while (!impl_->server.is_running() && !impl_->listener_done) std::this_thread::yield();
  return {};
}

int HttpServer::port() const { return impl_->port; }

std::string HttpServer::ServeBytesForTesting(std::string_view bytes) {
  return impl_->server.ServeBytes(bytes);
}

void HttpServer::Stop() {
  if (!impl_->listener.joinable()) return;
  impl_->server.stop();
  impl_->listener.join();
  impl_->server.StopWorkers();
}

}  // namespace shardctl::net
