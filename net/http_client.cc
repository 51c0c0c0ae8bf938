#include "net/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "net/chunked_decoder.h"
#include "net/event_loop.h"
#include "net/request_framing.h"
#include "net/socket_io.h"
#include "net/tls.h"

namespace shardctl::net {
namespace {

using Clock = std::chrono::steady_clock;

// An idle connection older than this is closed rather than reused: servers
// close idle keep-alive connections (shardctl after one second), and a request
// sent on a connection the server is closing fails with an unknown outcome.
constexpr auto kMaxIdle = std::chrono::milliseconds(500);
constexpr size_t kMaxIdleConnections = 256;
// An answer header larger than this is not a shardctl answer.
constexpr size_t kMaxHeadBytes = 64 * 1024 * 1024;

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

 private:
  int fd_;
};

// A connection to the server: its socket and, for an https:// URL, the TLS
// session over it (null for plain HTTP, which then costs nothing more).
class Connection {
 public:
  Connection() = default;
  Connection(Socket socket, std::unique_ptr<TlsSession> tls)
      : socket_(std::move(socket)), tls_(std::move(tls)) {}
  ~Connection() { Close(); }
  Connection(Connection&& other) noexcept = default;
  Connection& operator=(Connection&& other) noexcept {
    if (this != &other) {
      Close();
      socket_ = std::move(other.socket_);
      tls_ = std::move(other.tls_);
    }
    return *this;
  }

  int fd() const { return socket_.fd(); }
  bool valid() const { return socket_.valid(); }
  TlsSession* tls() const { return tls_.get(); }
  void SetTls(std::unique_ptr<TlsSession> tls) { tls_ = std::move(tls); }

  // Closes the connection, with a close_notify first through TLS (sent if
  // it can be without waiting).
  void Close() {
    if (tls_) {
      tls_->Shutdown();
      tls_.reset();  // before the descriptor it uses
    }
    socket_ = Socket();
  }

 private:
  Socket socket_;
  std::unique_ptr<TlsSession> tls_;
};

enum class ConnectError { kNone, kUnresolved, kRefused, kTimedOut };

// SetSourceAddress's address, its family 0 while unset.
sockaddr_storage source_address{};

bool IsLoopback(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    return (ntohl(reinterpret_cast<const sockaddr_in*>(address)->sin_addr.s_addr) >> 24) == 127;
  }
  if (address->sa_family == AF_INET6) {
    return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr);
  }
  return false;
}

// Binds `fd` to the source address before it connects to `to`, if one is
// set and fits (see SetSourceAddress). A failure leaves the choice to the
// system.
void BindSource(int fd, const sockaddr* to) {
  const auto* source = reinterpret_cast<const sockaddr*>(&source_address);
  if (source->sa_family == 0 || source->sa_family != to->sa_family) return;
  if (IsLoopback(source) && !IsLoopback(to)) return;
  socklen_t length = source->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  ::bind(fd, source, length);
}

// The addresses of url's host and port (a list to free with freeaddrinfo),
// or nullptr if the name does not resolve (`*why` then says why, if given).
addrinfo* Resolve(const Url& url, std::string* why = nullptr) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(url.port);
  int error = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found);
  if (error == 0) return found;
  if (why != nullptr) {
    *why = error == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(error);
  }
  return nullptr;
}

// The message for a host name that does not resolve.
core::Status Unresolved(const Url& url, const std::string& why) {
  return core::Unavailable(
      fmt::format("cannot connect to {} (cannot resolve {}: {})", url.ToString(), url.host, why));
}

// Connects to host:port within `timeout`, trying each address the name has
// (`*why`: why the name does not resolve, with kUnresolved).
std::pair<Socket, ConnectError> Connect(const Url& url, std::chrono::milliseconds timeout,
                                        std::string* why) {
  addrinfo* found = Resolve(url, why);
  if (found == nullptr) return {Socket(), ConnectError::kUnresolved};
  auto deadline = Clock::now() + timeout;
  ConnectError error = ConnectError::kRefused;
  Socket connected;
  for (addrinfo* a = found; a != nullptr && !connected.valid(); a = a->ai_next) {
    Socket socket(
        ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (!socket.valid()) continue;
    BindSource(socket.fd(), a->ai_addr);
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
bool StillOpen(const Connection& connection) {
  char byte;
  ssize_t n = ::recv(connection.fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
         (connection.tls() == nullptr || !connection.tls()->HasBuffered());
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
std::optional<AnswerHead> ParseAnswerHead(std::string_view header, size_t max_body_bytes) {
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
          length > max_body_bytes) {
        return std::nullopt;
      }
      head.content_length = length;
    } else if (EqualsIgnoringCase(name, "Connection")) {
      if (EqualsIgnoringCase(value, "close")) head.close = true;
      if (EqualsIgnoringCase(value, "keep-alive")) head.close = false;
    } else if (EqualsIgnoringCase(name, "Transfer-Encoding")) {
      if (!EqualsIgnoringCase(value, "chunked")) return std::nullopt;  // gzip, ...: not ours
      head.chunked = true;
    }
  }
  if (head.chunked) head.content_length.reset();  // RFC 9112 section 6.3
  return head;
}

// An answer's body, decoded as its bytes arrive: by its Content-Length, in
// the chunked coding, or (neither) up to the end of the connection.
class BodyReader {
 public:
  explicit BodyReader(const AnswerHead& head)
      : chunked_(head.chunked), left_(head.content_length) {}

  // Appends the body's part of `bytes` to `*body`. Returns false if they are
  // not in the chunked coding announced.
  bool Feed(std::string_view bytes, std::string* body) {
    size_t used = bytes.size();
    if (chunked_) {
      if (chunks_.state() == ChunkedDecoder::State::kMore) used = chunks_.Decode(bytes, body);
      if (chunks_.state() == ChunkedDecoder::State::kBad) return false;
    } else if (left_) {
      used = std::min(*left_, bytes.size());
      body->append(bytes.substr(0, used));
      *left_ -= used;
    } else {
      body->append(bytes);
    }
    extra_ = extra_ || used < bytes.size();
    return true;
  }
  // True once the whole body is in (never for a body that ends with the connection).
  bool complete() const {
    return chunked_ ? chunks_.state() == ChunkedDecoder::State::kDone : left_ == size_t{0};
  }
  bool EndsWithConnection() const { return !chunked_ && !left_; }
  // True if bytes came after the body: the connection cannot carry another request.
  bool extra() const { return extra_; }

 private:
  bool chunked_;
  std::optional<size_t> left_;
  ChunkedDecoder chunks_;
  bool extra_ = false;
};

// kTlsFailed: the TLS session failed (TlsSession::why() says why), rather
// than closed.
enum class Receipt { kBytes, kClosed, kNothingInTime, kFailed, kTlsFailed };

// Receives a record's data through TLS before `deadline`, appending it to
// `*received`. Data the session already holds comes first, without waiting.
Receipt ReceiveTls(TlsSession& tls, int fd, std::string* received, Clock::time_point deadline) {
  for (;;) {
    char chunk[16 * 1024];
    size_t moved = 0;
    switch (tls.Read(chunk, sizeof(chunk), &moved)) {
      case TlsIo::kDone: received->append(chunk, moved); return Receipt::kBytes;
      case TlsIo::kWantRead:
        if (!Await(fd, POLLIN, deadline)) return Receipt::kNothingInTime;
        break;
      case TlsIo::kWantWrite:
        if (!Await(fd, POLLOUT, deadline)) return Receipt::kNothingInTime;
        break;
      case TlsIo::kClosed: return Receipt::kClosed;
      case TlsIo::kFailed: return Receipt::kTlsFailed;
    }
  }
}

// Receives what arrives on `connection` before `deadline`, appending it to
// `*received`.
Receipt Receive(const Connection& connection, std::string* received, Clock::time_point deadline) {
  if (TlsSession* tls = connection.tls())
    return ReceiveTls(*tls, connection.fd(), received, deadline);
  const int fd = connection.fd();
  for (;;) {
    char chunk[16 * 1024];
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      received->append(chunk, static_cast<size_t>(n));
      return Receipt::kBytes;
    }
    if (n == 0) return Receipt::kClosed;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Receipt::kFailed;
    if (!Await(fd, POLLIN, deadline)) return Receipt::kNothingInTime;
  }
}

// Why a request could not be sent whole (kUnavailable, as the server could
// not have acted on a part). On a new TLS session, `io` (the write's
// kClosed or kFailed) may hide the server's refusal: with TLS 1.3 a server
// that refuses the client's certificate sends its alert after the client's
// handshake has ended, then resets the connection, failing the write; the
// alert still waits to be read.
core::Status SendFailure(TlsSession* tls, TlsIo io, bool first_use, const Url& url) {
  if (tls != nullptr && first_use) {
    char byte;
    size_t moved = 0;
    if (io == TlsIo::kFailed || tls->Read(&byte, 1, &moved) == TlsIo::kFailed) {
      return tls->Failure(url.ToString());
    }
  }
  return core::Unavailable(
      fmt::format("lost the connection to {} while sending the request", url.ToString()));
}

// Sends all of `data` on `connection` before `deadline`. Returns OK, or why
// not (SendFailure). `first_use`: nothing was sent on it before.
core::Status SendRequest(const Connection& connection, std::string_view data,
                         Clock::time_point deadline, bool first_use, const Url& url) {
  TlsSession* tls = connection.tls();
  if (tls == nullptr) {
    if (SendAll(connection.fd(), data, deadline)) return core::Status();
    return SendFailure(nullptr, TlsIo::kClosed, first_use, url);
  }
  while (!data.empty()) {
    size_t moved = 0;
    switch (TlsIo io = tls->Write(data.data(), data.size(), &moved)) {
      case TlsIo::kDone: data.remove_prefix(moved); break;
      case TlsIo::kWantRead:
        if (!Await(connection.fd(), POLLIN, deadline)) return SendFailure(tls, io, false, url);
        break;
      case TlsIo::kWantWrite:
        if (!Await(connection.fd(), POLLOUT, deadline)) return SendFailure(tls, io, false, url);
        break;
      case TlsIo::kClosed:
      case TlsIo::kFailed: return SendFailure(tls, io, first_use, url);
    }
  }
  return core::Status();
}

core::Status UnknownOutcome(const Url& url, std::chrono::milliseconds timeout) {
  return core::Status(
      core::Code::kTimeout,
      fmt::format("no complete answer from {} within {} ms (timed out or the connection was "
                  "lost; the request may or may not have been applied)",
                  url.ToString(), timeout.count()));
}

core::Status NotHttp(const Url& url) {
  return core::Status(core::Code::kBadGateway,
                      fmt::format("{} did not answer in HTTP/1.1 (a status line, then a body of "
                                  "a known length or in chunks)",
                                  url.ToString()));
}

// Why a TLS session that failed (kFailed) or closed (kClosed) in its
// handshake did: kUnavailable, "TLS: ...".
core::Status HandshakeFailure(const TlsSession& tls, TlsIo io, const Url& url) {
  if (io == TlsIo::kFailed) return tls.Failure(url.ToString());
  return core::Unavailable(fmt::format(
      "TLS: with {}: the server closed the connection during the handshake", url.ToString()));
}

// Whether a TLS failure on the first read of a new session is the server
// refusing this client: with TLS 1.3 the client's handshake ends before the
// server has checked the client's certificate, and a server that refuses it
// says so in an alert that comes instead of the first answer, the request
// unread. (A session that fails after answering, or closes, is the unknown
// outcome instead.)
bool RefusedAtFirstRead(bool first_use, bool heard, Receipt receipt) {
  return receipt == Receipt::kTlsFailed && first_use && !heard;
}

// Receives until the header of the final answer (after any interim 1xx
// answers) is in `*received`, and removes it from there: what remains is the
// start of the body. `first_use`: no request went on `connection` before.
core::Result<AnswerHead> ReadHead(const Connection& connection, bool first_use,
                                  std::string* received, Clock::time_point deadline, const Url& url,
                                  const HttpClientOptions& options) {
  const std::chrono::milliseconds timeout = options.request_timeout;
  const size_t max_body_bytes = options.max_answer_bytes;
  bool heard = !received->empty();
  for (;;) {
    if (size_t header_end = FindHeaderEnd(*received); header_end != std::string::npos) {
      std::optional<AnswerHead> head =
          ParseAnswerHead(std::string_view(*received).substr(0, header_end), max_body_bytes);
      if (!head) return NotHttp(url);
      received->erase(0, header_end);
      if (head->status < 100 || head->status >= 200) return *head;
      continue;  // interim: the real one follows
    }
    if (received->size() > kMaxHeadBytes) return UnknownOutcome(url, timeout);
    Receipt receipt = Receive(connection, received, deadline);
    if (receipt == Receipt::kBytes) {
      heard = true;
      continue;
    }
    if (RefusedAtFirstRead(first_use, heard, receipt))
      return connection.tls()->Failure(url.ToString());
    return UnknownOutcome(url, timeout);
  }
}

// A TLS session over `fd` with url's server: options.tls, else the process's
// client context.
core::Result<std::unique_ptr<TlsSession>> StartTls(const Url& url, const HttpClientOptions& options,
                                                   int fd) {
  std::shared_ptr<const TlsContext> context = options.tls;
  if (!context) {
    core::Result<std::shared_ptr<const TlsContext>> process = TlsClientContext();
    if (!process.ok()) {
      return core::Unavailable(fmt::format("TLS: no client context for {}: {}", url.ToString(),
                                           process.status().message()));
    }
    context = std::move(process).value();
  }
  std::unique_ptr<TlsSession> session = TlsSession::Connect(std::move(context), fd, url.host);
  if (!session) {
    return core::Unavailable(fmt::format("TLS: cannot start a session with {}", url.ToString()));
  }
  return core::Result<std::unique_ptr<TlsSession>>(std::move(session));
}

// The handshake did not finish in time: nothing was sent, so the request
// surely never reached the server.
core::Status HandshakeTimedOut(const Url& url, std::chrono::milliseconds timeout) {
  return core::Unavailable(fmt::format(
      "cannot connect to {} (the TLS handshake did not finish within {} ms: does it speak "
      "plain http://?)",
      url.ToString(), timeout.count()));
}

// Opens a connection to `url` (with its TLS handshake done, for https://), or
// says why it cannot.
core::Result<Connection> Open(const Url& url, const HttpClientOptions& options) {
  const std::chrono::milliseconds timeout = options.connect_timeout;
  std::string unresolved;
  auto [connected, error] = Connect(url, timeout, &unresolved);
  if (error == ConnectError::kUnresolved) return Unresolved(url, unresolved);
  if (error == ConnectError::kTimedOut) {
    return core::Unavailable(fmt::format("cannot connect to {} (no answer within {} ms)",
                                         url.ToString(), timeout.count()));
  }
  if (error != ConnectError::kNone) {
    return core::Unavailable(fmt::format(
        "cannot connect to {} (connection refused or host unreachable)", url.ToString()));
  }
  if (!url.tls) return Connection(std::move(connected), nullptr);
  core::Result<std::unique_ptr<TlsSession>> tls = StartTls(url, options, connected.fd());
  if (!tls.ok()) return tls.status();
  core::Status handshake =
      HandshakeBefore(**tls, connected.fd(), Clock::now() + timeout, url.ToString());
  if (handshake.code() == core::Code::kTimeout) return HandshakeTimedOut(url, timeout);
  if (!handshake.ok()) return handshake;
  return Connection(std::move(connected), std::move(tls).value());
}

}  // namespace

void SetSourceAddress(const std::string& ip) {
  source_address = {};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&source_address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&source_address);
  if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
  } else {
    source_address = {};
  }
}

struct HttpClient::Pool {
  struct Idle {
    Connection connection;
    Clock::time_point since;
  };
  std::mutex mutex;
  std::vector<Idle> idle;  // most recently used last

  // An idle connection still fit to carry a request, or an invalid one.
  Connection Take() {
    std::lock_guard lock(mutex);
    auto now = Clock::now();
    while (!idle.empty()) {
      Idle entry = std::move(idle.back());
      idle.pop_back();
      if (now - entry.since < kMaxIdle && StillOpen(entry.connection)) {
        return std::move(entry.connection);
      }
      if (now - entry.since < kMaxIdle) continue;  // closed by the server (or it died)
      idle.clear();                                // older still
    }
    return Connection();
  }

  void Give(Connection connection) {
    std::lock_guard lock(mutex);
    if (idle.size() < kMaxIdleConnections) idle.push_back({std::move(connection), Clock::now()});
  }
};

struct HttpStream::Impl {
  Connection connection;
  BodyReader body;
  std::string pending;  // body bytes that came with the header
  Url url;
  bool closed = false;  // the server closed the connection, ending a body without length
};

HttpStream::HttpStream(int status, std::unique_ptr<Impl> impl)
    : status_(status), impl_(std::move(impl)) {}

HttpStream::~HttpStream() = default;

bool HttpStream::ended() const { return impl_->body.complete() || impl_->closed; }

core::Result<std::string> HttpStream::Read(Clock::time_point deadline) {
  if (!impl_->pending.empty()) return std::exchange(impl_->pending, {});
  if (ended())
    return core::Unavailable(fmt::format("the answer from {} ended", impl_->url.ToString()));
  std::string received;
  switch (Receive(impl_->connection, &received, deadline)) {
    case Receipt::kNothingInTime: return std::string();
    case Receipt::kClosed:
      if (!impl_->body.EndsWithConnection()) {
        return core::Unavailable(
            fmt::format("{} closed the connection before its answer ended", impl_->url.ToString()));
      }
      impl_->closed = true;
      return std::string();
    case Receipt::kFailed:
      return core::Unavailable(fmt::format("lost the connection to {}", impl_->url.ToString()));
    case Receipt::kTlsFailed:
      return core::Unavailable(fmt::format("lost the connection to {}: {}", impl_->url.ToString(),
                                           impl_->connection.tls()->why()));
    case Receipt::kBytes: break;
  }
  std::string data;
  if (!impl_->body.Feed(received, &data)) return NotHttp(impl_->url);
  return data;
}

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

std::string HttpClient::FormatRequest(bool post, const std::string& path, const std::string& body,
                                      const HttpHeaders& headers) const {
  std::string request = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\n", post ? "POST" : "GET", path,
                                    JoinHostPort(url_.host, url_.port));
  if (!options_.bearer_token.empty()) {
    fmt::format_to(std::back_inserter(request), "Authorization: Bearer {}\r\n",
                   options_.bearer_token);
  }
  bool typed = false;  // a Content-Type among `headers` replaces the JSON one
  for (const auto& [name, value] : headers) {
    fmt::format_to(std::back_inserter(request), "{}: {}\r\n", name, value);
    typed = typed || strcasecmp(name.c_str(), "Content-Type") == 0;
  }
  if (post) {
    fmt::format_to(std::back_inserter(request), "{}Content-Length: {}\r\n",
                   typed ? "" : "Content-Type: application/json\r\n", body.size());
  }
  request += "\r\n";
  request += body;
  return request;
}

core::Result<HttpReply> HttpClient::Send(bool post, const std::string& path,
                                         const std::string& body, const HttpHeaders& headers) {
  Connection connection = pool_->Take();
  const bool first_use = !connection.valid();
  if (first_use) {
    core::Result<Connection> opened = Open(url_, options_);
    if (!opened.ok()) return opened.status();
    connection = std::move(opened).value();
  }
  // The whole request in one send.
  auto deadline = Clock::now() + options_.request_timeout;
  if (core::Status sent = SendRequest(connection, FormatRequest(post, path, body, headers),
                                      deadline, first_use, url_);
      !sent.ok()) {
    return sent;
  }

  std::string received;
  core::Result<AnswerHead> head =
      ReadHead(connection, first_use, &received, deadline, url_, options_);
  if (!head.ok()) return head.status();
  BodyReader reader(*head);
  HttpReply reply{head->status, {}};
  bool closed = false;
  for (;;) {
    if (!reader.Feed(received, &reply.body)) return NotHttp(url_);
    if (reader.complete()) break;
    if (reply.body.size() > options_.max_answer_bytes) {
      return UnknownOutcome(url_, options_.request_timeout);
    }
    received.clear();
    Receipt receipt = Receive(connection, &received, deadline);
    if (receipt == Receipt::kClosed && reader.EndsWithConnection()) {
      closed = true;
      break;
    }
    if (receipt != Receipt::kBytes) return UnknownOutcome(url_, options_.request_timeout);
  }
  if (!head->close && !closed && !reader.extra()) pool_->Give(std::move(connection));
  return reply;
}

core::Result<std::unique_ptr<HttpStream>> HttpClient::PostStream(const std::string& path,
                                                                 const std::string& json_body) {
  core::Result<Connection> connection = Open(url_, options_);
  if (!connection.ok()) return connection.status();
  auto deadline = Clock::now() + options_.request_timeout;
  if (core::Status sent = SendRequest(*connection, FormatRequest(true, path, json_body, {}),
                                      deadline, /*first_use=*/true, url_);
      !sent.ok()) {
    return sent;
  }
  std::string received;
  core::Result<AnswerHead> head =
      ReadHead(*connection, /*first_use=*/true, &received, deadline, url_, options_);
  if (!head.ok()) return head.status();
  auto impl = std::unique_ptr<HttpStream::Impl>(
      new HttpStream::Impl{std::move(connection).value(), BodyReader(*head), {}, url_});
  if (!impl->body.Feed(received, &impl->pending)) return NotHttp(url_);
  return std::unique_ptr<HttpStream>(new HttpStream(head->status, std::move(impl)));
}

// --- AsyncHttpClient ---------------------------------------------------------------------------

struct AsyncHttpClient::Impl final : EventLoop::Watcher {
  // Connections open at once to the server from one loop; more requests queue.
  static constexpr size_t kMaxConnections = 128;

  // A connection's life: kConnecting (TCP), kHandshaking (TLS, for
  // https://), then kSending a request, kReceiving its answer and kIdle until
  // the next, as long as it can be kept; kDead once closed. While connecting
  // and handshaking, `out` and `done` hold the first request.
  struct Conn final : EventLoop::Watcher {
    enum class State { kConnecting, kHandshaking, kSending, kReceiving, kIdle, kDead };
    Impl* owner = nullptr;
    Connection connection;
    State state = State::kConnecting;
    uint32_t watching = 0;  // the events asked of the loop
    std::string out;        // the request
    size_t sent = 0;
    std::string in;  // answer bytes not yet taken apart
    std::optional<AnswerHead> head;
    std::optional<BodyReader> reader;
    HttpReply reply;
    Done done;
    Clock::time_point deadline;    // of the connect and handshake, or of the request under way
    Clock::time_point idle_since;  // kIdle
    bool answered = false;         // an answer came whole on it (its TLS session works)

    void OnReady(uint32_t events) override { owner->Ready(*this, events); }
  };

  Impl(const HttpClient& client, EventLoop& loop)
      : url(client.url()), options(client.options()), loop(loop) {
    loop.AddTicker(this);
  }
  ~Impl() {
    loop.RemoveTicker(this);
    for (auto& conn : conns) loop.Unwatch(conn->connection.fd());
  }

  void Send(std::string request, Done done) {
    const auto now = Clock::now();
    while (!idle.empty()) {
      Conn* conn = idle.back();
      idle.pop_back();
      if (now - conn->idle_since < kMaxIdle) {
        Start(*conn, std::move(request), std::move(done));
        return;
      }
      Kill(*conn);
    }
    if (conns.size() >= kMaxConnections) {
      queued.emplace_back(std::move(request), std::move(done));
      return;
    }
    Open(std::move(request), std::move(done));
  }

  void Open(std::string request, Done done) {
    if (!address) {
      // The first address the name has, once (a name that does not resolve
      // is tried again next time).
      std::string why;
      addrinfo* found = Resolve(url, &why);
      if (found == nullptr) {
        done(Unresolved(url, why));
        return;
      }
      address.emplace();
      std::memcpy(&*address, found->ai_addr, found->ai_addrlen);
      address_length = found->ai_addrlen;
      ::freeaddrinfo(found);
    }
    auto conn = std::make_unique<Conn>();
    conn->owner = this;
    conn->connection = Connection(
        Socket(::socket(address->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)),
        nullptr);
    if (!conn->connection.valid()) {
      done(Refused());
      return;
    }
    int yes = 1;
    ::setsockopt(conn->connection.fd(), IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    BindSource(conn->connection.fd(), reinterpret_cast<const sockaddr*>(&*address));
    Conn& c = *conn;
    conns.push_back(std::move(conn));
    if (::connect(c.connection.fd(), reinterpret_cast<const sockaddr*>(&*address),
                  address_length) == 0) {
      Connected(c, std::move(request), std::move(done));
      return;
    }
    if (errno != EINPROGRESS) {
      Kill(c);
      done(Refused());
      return;
    }
    c.state = Conn::State::kConnecting;
    c.out = std::move(request);
    c.done = std::move(done);
    c.deadline = Clock::now() + options.connect_timeout;
    WatchFor(c, EPOLLOUT);
  }

  core::Status Refused() const {
    return core::Unavailable(fmt::format(
        "cannot connect to {} (connection refused or host unreachable)", url.ToString()));
  }

  // The TCP connection is up: plain HTTP sends the request now, https:// first
  // drives its handshake, within the connect timeout again.
  void Connected(Conn& c, std::string request, Done done) {
    if (!url.tls) {
      Start(c, std::move(request), std::move(done));
      return;
    }
    c.out = std::move(request);
    c.done = std::move(done);
    core::Result<std::unique_ptr<TlsSession>> tls = StartTls(url, options, c.connection.fd());
    if (!tls.ok()) {
      Fail(c, tls.status());
      return;
    }
    c.connection.SetTls(std::move(tls).value());
    c.state = Conn::State::kHandshaking;
    c.deadline = Clock::now() + options.connect_timeout;
    Handshake(c);
  }

  // Goes on with the handshake as far as the socket lets it, then sends the
  // request once it is done.
  void Handshake(Conn& c) {
    TlsSession& tls = *c.connection.tls();
    switch (TlsIo io = tls.Handshake()) {
      case TlsIo::kDone: Start(c, std::move(c.out), std::move(c.done)); return;
      case TlsIo::kWantRead: WatchFor(c, EPOLLIN); return;
      case TlsIo::kWantWrite: WatchFor(c, EPOLLOUT); return;
      case TlsIo::kClosed:
      case TlsIo::kFailed: Fail(c, HandshakeFailure(tls, io, url)); return;
    }
  }

  void Start(Conn& c, std::string request, Done done) {
    c.state = Conn::State::kSending;
    c.out = std::move(request);
    c.sent = 0;
    c.done = std::move(done);
    c.deadline = Clock::now() + options.request_timeout;
    SendSome(c);
  }

  void SendSome(Conn& c) {
    if (c.connection.tls() != nullptr) {
      SendSomeTls(c, *c.connection.tls());
      return;
    }
    while (c.sent < c.out.size()) {
      ssize_t n =
          ::send(c.connection.fd(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        WatchFor(c, EPOLLOUT);
        return;
      } else {
        Fail(c, SendFailure(nullptr, TlsIo::kClosed, false, url));
        return;
      }
    }
    Sent(c);
  }

  void SendSomeTls(Conn& c, TlsSession& tls) {
    while (c.sent < c.out.size()) {
      size_t moved = 0;
      switch (TlsIo io = tls.Write(c.out.data() + c.sent, c.out.size() - c.sent, &moved)) {
        case TlsIo::kDone: c.sent += moved; break;
        case TlsIo::kWantRead: WatchFor(c, EPOLLIN); return;
        case TlsIo::kWantWrite: WatchFor(c, EPOLLOUT); return;
        case TlsIo::kClosed:
        case TlsIo::kFailed: Fail(c, SendFailure(&tls, io, !c.answered, url)); return;
      }
    }
    Sent(c);
  }

  // The request is out: wait for its answer.
  void Sent(Conn& c) {
    c.state = Conn::State::kReceiving;
    c.in.clear();
    c.head.reset();
    c.reader.reset();
    c.reply = HttpReply{};
    WatchFor(c, EPOLLIN | EPOLLRDHUP);
  }

  void Ready(Conn& c, uint32_t events) {
    switch (c.state) {
      case Conn::State::kDead:
        return;  // closed earlier in this pass
      case Conn::State::kIdle:
        Kill(c);  // closed by the server, or it sent something unasked
        return;
      case Conn::State::kConnecting: {
        int error = 0;
        socklen_t length = sizeof(error);
        ::getsockopt(c.connection.fd(), SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0 || (events & EPOLLERR) != 0) {
          Fail(c, Refused());
          return;
        }
        Connected(c, std::move(c.out), std::move(c.done));
        return;
      }
      case Conn::State::kHandshaking: Handshake(c); return;
      case Conn::State::kSending:
        SendSome(c);
        return;
      case Conn::State::kReceiving:
        Receive(c);
        return;
    }
  }

  void Receive(Conn& c) {
    if (c.connection.tls() != nullptr) {
      ReceiveTls(c, *c.connection.tls());
      return;
    }
    for (;;) {
      char chunk[16 * 1024];
      ssize_t n = ::recv(c.connection.fd(), chunk, sizeof(chunk), 0);
      if (n > 0) {
        c.in.append(chunk, static_cast<size_t>(n));
        if (Parse(c) || static_cast<size_t>(n) < sizeof(chunk)) return;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      // Closed or broken: the end of a body that lasts until the close, or a lost answer.
      Ended(c, /*closed=*/n == 0);
      return;
    }
  }

  // Reads through TLS until the socket has nothing more (a read gives one
  // record's data, shorter than the chunk, so only kWantRead says so).
  void ReceiveTls(Conn& c, TlsSession& tls) {
    for (;;) {
      char chunk[16 * 1024];
      size_t moved = 0;
      switch (tls.Read(chunk, sizeof(chunk), &moved)) {
        case TlsIo::kDone:
          c.in.append(chunk, moved);
          if (Parse(c)) return;
          break;
        case TlsIo::kWantRead: WatchFor(c, EPOLLIN | EPOLLRDHUP); return;
        case TlsIo::kWantWrite: WatchFor(c, EPOLLOUT); return;
        case TlsIo::kClosed: Ended(c, /*closed=*/true); return;
        case TlsIo::kFailed:
          if (RefusedAtFirstRead(!c.answered, c.head.has_value() || !c.in.empty(),
                                 Receipt::kTlsFailed)) {
            Fail(c, tls.Failure(url.ToString()));
          } else {
            Fail(c, UnknownOutcome(url, options.request_timeout));
          }
          return;
      }
    }
  }

  // The connection ended (`closed`: cleanly) before the answer was whole: the
  // end of a body that lasts until the close, or a lost answer.
  void Ended(Conn& c, bool closed) {
    if (closed && c.reader && c.reader->EndsWithConnection()) {
      Finish(c, /*reusable=*/false);
    } else {
      Fail(c, UnknownOutcome(url, options.request_timeout));
    }
  }

  // Takes apart what has arrived; returns true once the connection is done
  // with (answered, or failed).
  bool Parse(Conn& c) {
    while (!c.head) {
      size_t header_end = FindHeaderEnd(c.in);
      if (header_end == std::string::npos) {
        if (c.in.size() > kMaxHeadBytes) {
          Fail(c, UnknownOutcome(url, options.request_timeout));
          return true;
        }
        return false;
      }
      std::optional<AnswerHead> head =
          ParseAnswerHead(std::string_view(c.in).substr(0, header_end), options.max_answer_bytes);
      if (!head) {
        Fail(c, NotHttp(url));
        return true;
      }
      c.in.erase(0, header_end);
      if (head->status >= 100 && head->status < 200) continue;  // interim: the real one follows
      c.head = *head;
      c.reply.status = head->status;
      c.reader.emplace(*head);
    }
    if (!c.reader->Feed(c.in, &c.reply.body)) {
      Fail(c, NotHttp(url));
      return true;
    }
    c.in.clear();
    if (c.reader->complete()) {
      Finish(c, !c.head->close && !c.reader->extra());
      return true;
    }
    if (c.reply.body.size() > options.max_answer_bytes) {
      Fail(c, UnknownOutcome(url, options.request_timeout));
      return true;
    }
    return false;
  }

  void Finish(Conn& c, bool reusable) {
    Done done = std::move(c.done);
    HttpReply reply = std::move(c.reply);
    c.answered = true;
    // Data the TLS session holds already was not asked for either.
    if (c.connection.tls() != nullptr && c.connection.tls()->HasBuffered()) reusable = false;
    if (reusable) {
      c.state = Conn::State::kIdle;
      c.idle_since = Clock::now();
      c.out.clear();
      idle.push_back(&c);
      // Idle, it waits for the server's close (a TLS read may have waited
      // for the socket to be writable instead: that would end it at once).
      WatchFor(c, EPOLLIN | EPOLLRDHUP);
    } else {
      Kill(c);
    }
    done(std::move(reply));
    SendQueued();
  }

  void Fail(Conn& c, core::Status failure) {
    Done done = std::move(c.done);
    Kill(c);
    if (done) done(std::move(failure));
    SendQueued();
  }

  void SendQueued() {
    while (!queued.empty() && (conns.size() < kMaxConnections || !idle.empty())) {
      auto [request, done] = std::move(queued.front());
      queued.pop_front();
      Send(std::move(request), std::move(done));
    }
  }

  // Closes `c`; frees it on the next tick, as an event for it may still come in this pass.
  void Kill(Conn& c) {
    if (c.state == Conn::State::kDead) return;
    c.state = Conn::State::kDead;
    loop.Unwatch(c.connection.fd());
    c.connection.Close();
    std::erase(idle, &c);
    auto it = std::find_if(conns.begin(), conns.end(), [&](const auto& conn) { return conn.get() == &c; });
    dead.push_back(std::move(*it));
    conns.erase(it);
  }

  void WatchFor(Conn& c, uint32_t events) {
    if (c.watching == events) return;
    c.watching = events;
    if (!loop.Watch(c.connection.fd(), events, &c)) {
      Fail(c, core::Unavailable(fmt::format("cannot wait for {}: {}", url.ToString(),
                                            std::strerror(errno))));
    }
  }

  void OnReady(uint32_t) override {}

  void OnTick() override {
    const auto now = Clock::now();
    std::vector<Conn*> late;
    for (auto& conn : conns) {
      if (conn->state == Conn::State::kIdle ? now - conn->idle_since >= kMaxIdle
                                            : now >= conn->deadline) {
        late.push_back(conn.get());
      }
    }
    for (Conn* conn : late) {
      if (conn->state == Conn::State::kIdle) {
        Kill(*conn);
      } else if (conn->state == Conn::State::kConnecting) {
        Fail(*conn, core::Unavailable(fmt::format("cannot connect to {} (no answer within {} ms)",
                                                  url.ToString(), options.connect_timeout.count())));
      } else if (conn->state == Conn::State::kHandshaking) {
        Fail(*conn, HandshakeTimedOut(url, options.connect_timeout));
      } else if (conn->state != Conn::State::kDead) {
        Fail(*conn, UnknownOutcome(url, options.request_timeout));
      }
    }
    dead.clear();
  }

  const Url url;
  const HttpClientOptions options;
  EventLoop& loop;
  std::optional<sockaddr_storage> address;
  socklen_t address_length = 0;
  std::vector<std::unique_ptr<Conn>> conns;  // open
  std::vector<Conn*> idle;                   // most recently used last
  std::vector<std::unique_ptr<Conn>> dead;   // closed in this pass
  std::deque<std::pair<std::string, Done>> queued;
};

AsyncHttpClient::AsyncHttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AsyncHttpClient::~AsyncHttpClient() = default;

AsyncHttpClient& AsyncHttpClient::ForThisLoop(const HttpClient& client) {
  thread_local std::unordered_map<std::string, std::unique_ptr<AsyncHttpClient>> clients;
  const HttpClientOptions& options = client.options();
  std::string key = fmt::format("{} {} {} {}", client.url().ToString(),
                                options.connect_timeout.count(), options.request_timeout.count(),
                                options.bearer_token);
  // Clients with TLS contexts of their own do not share connections.
  if (client.url().tls) fmt::format_to(std::back_inserter(key), " {}", fmt::ptr(options.tls.get()));
  std::unique_ptr<AsyncHttpClient>& found = clients[key];
  if (!found) {
    EventLoop* loop = EventLoop::Current();
    found.reset(new AsyncHttpClient(std::make_unique<Impl>(client, *loop)));
  }
  return *found;
}

void AsyncHttpClient::Send(std::string request, Done done) {
  impl_->Send(std::move(request), std::move(done));
}

}  // namespace shardctl::net
