#include "net/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <exception>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "core/durable_batch.h"
#include "core/protocol.h"
#include "core/worker_pool.h"
#include "net/auth.h"
#include "net/chunked_decoder.h"
#include "net/event_loop.h"
#include "net/request_framing.h"
#include "net/socket_io.h"
#include "net/tls.h"
#include "net/url.h"

namespace shardctl::net {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kJson = "application/json";
constexpr int kListenBacklog = 1024;
// A refused oversized body is still read (and dropped) up to this size, so the
// client, which sends the whole body before it reads, gets the 413 rather
// than a reset connection. Larger bodies get the 413 and the connection closed.
constexpr uint64_t kMaxDrainBytes = 1024 * 1024;
// The longest request target (path and query) accepted; longer ones get 414.
constexpr size_t kMaxTargetBytes = 8192;
// The longest header line accepted; longer ones get 431.
constexpr size_t kMaxHeaderLineBytes = 8192;
// How often a loop checks its connections for having outlived a deadline.
constexpr auto kSweepInterval = std::chrono::milliseconds(100);
constexpr size_t kReadChunk = 16 * 1024;
// The first byte of a TLS client's hello (a handshake record), which no HTTP
// request starts with.
constexpr char kTlsHandshakeRecord = 0x16;
constexpr int kEventsPerWait = 128;
// With journals that fsync each write, how long a pass may wait for the
// clients it answered last time to send again, so that they share the next
// fsync rather than wait for the one after it (an fsync takes some 300 us).
constexpr auto kMaxGather = std::chrono::microseconds(150);

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
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

// One route's requests, for metrics: by status code, and how long each took.
struct RouteStats {
  static constexpr int kCodes = 600;
  std::string label;
  std::unique_ptr<std::atomic<uint64_t>[]> codes =
      std::make_unique<std::atomic<uint64_t>[]>(kCodes);
  core::Histogram latency{core::LatencyBuckets()};

  void Count(int status, Clock::duration took) {
    codes[status >= 0 && status < kCodes ? status : 0].fetch_add(1, std::memory_order_relaxed);
    latency.Observe(std::chrono::duration<double>(took).count());
  }
};

// A server's counts, shared with the registry's collector (which may run
// after the server went).
struct ServerStats {
  std::string listener;
  std::map<std::string, std::unique_ptr<RouteStats>, std::less<>> routes;  // by label
  RouteStats other;
  std::atomic<size_t> open_connections{0};
  std::atomic<uint64_t> tls_failures{0};  // TLS handshakes or sessions that failed
  bool tls = false;                       // the listener speaks TLS

  ServerStats() { other.label = "other"; }
  RouteStats* ForPath(std::string_view path) {
    std::string label = RouteLabel(path);
    auto found = routes.find(label);
    if (found == routes.end()) {
      auto stats = std::make_unique<RouteStats>();
      stats->label = label;
      found = routes.emplace(label, std::move(stats)).first;
    }
    return found->second.get();
  }
  void Collect(core::MetricSink& sink) const {
    auto collect = [&](const RouteStats& route) {
      for (int code = 0; code < RouteStats::kCodes; ++code) {
        uint64_t n = route.codes[code].load(std::memory_order_relaxed);
        if (n == 0) continue;
        sink.Sample("shardctl_http_requests_total",
                    {{"listener", listener}, {"route", route.label}, {"code", std::to_string(code)}},
                    static_cast<double>(n));
      }
      core::Histogram::Snapshot latency = route.latency.Read();
      if (latency.cumulative.back() > 0) {
        sink.Histogram("shardctl_http_request_duration_seconds",
                       {{"listener", listener}, {"route", route.label}}, latency);
      }
    };
    for (const auto& [label, route] : routes) collect(*route);
    collect(other);
    sink.Sample("shardctl_http_connections_open", {{"listener", listener}},
                static_cast<double>(open_connections.load(std::memory_order_relaxed)));
    if (tls) {
      sink.Sample("shardctl_tls_failures_total", {{"listener", listener}},
                  static_cast<double>(tls_failures.load(std::memory_order_relaxed)));
    }
  }
};

// One answer, before it is written out.
struct Answer {
  int status = 200;
  std::string body;
  std::string extra_headers;  // whole lines, each ending in CRLF
  std::string content_type;   // empty: JSON
  bool close = false;         // the connection closes after it
  bool head_only = false;     // a HEAD request: no body
  struct RouteStats* stats = nullptr;  // counted here when sent; nullptr: "other"
};

Answer ErrorAnswer(int status, std::string_view message, bool close = false) {
  Answer answer;
  answer.status = status;
  answer.body = core::FormatError(message);
  answer.close = close;
  return answer;
}

void AppendAnswer(const Answer& answer, std::string* out) {
  if (answer.status == 204) {  // no content: no body, and no length or type for one
    fmt::format_to(std::back_inserter(*out), "HTTP/1.1 204 No Content\r\n{}{}\r\n",
                   answer.extra_headers, answer.close ? "Connection: close\r\n" : "");
    return;
  }
  fmt::format_to(std::back_inserter(*out),
                 "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}{}\r\n",
                 answer.status, ReasonPhrase(answer.status),
                 answer.content_type.empty() ? kJson : std::string_view(answer.content_type),
                 answer.body.size(), answer.extra_headers,
                 answer.close ? "Connection: close\r\n" : "");
  if (!answer.head_only) out->append(answer.body);
}

// One client connection, owned by one loop: only that loop's thread touches
// it, except that the acceptor adds it and Stop() closes it once every loop
// has finished.
struct Connection {
  int fd = -1;
  std::string remote;  // "ip:port", for the access log
  // With TLS: the session over `fd`, and whether its last read could not go
  // on until the socket was writable (the handshake's answer did not fit).
  std::unique_ptr<TlsSession> tls;
  bool read_wants_write = false;

  std::string received;       // bytes of requests not yet served
  size_t scanned = 0;         // bytes of `received` known to hold no header end
  size_t needed = 0;          // once the header is in: the whole request's length
  Clock::time_point started;  // when the first byte of the pending request came
  bool refused = false;       // a refused body is being read and dropped
  bool continued = false;     // "100 Continue" was sent for the pending request
  uint64_t discard = 0;       // bytes of it still to come
  // A request whose body comes in the chunked coding: `received` holds its
  // header (`chunked_header` bytes long), then the bytes not yet decoded;
  // `body` its body decoded so far.
  bool chunked = false;
  size_t chunked_header = 0;
  ChunkedDecoder chunks;
  std::string body;
  // A refused chunked body is still read (and dropped) to its end, at most
  // kMaxDrainBytes of it and until `drain_deadline`; then the connection closes.
  bool draining = false;
  Clock::time_point drain_deadline;

  std::string out;            // answer bytes not yet sent
  bool closing = false;       // close once `out` is sent
  bool end_of_input = false;  // the client sent all it will send
  bool writing = false;       // waiting for EPOLLOUT, not reading
  bool touched = false;       // in the loop's list for this pass
  bool closed = false;        // closed; kept until the pass ends
  Clock::time_point deadline;
  // While not 0: the request whose answer comes later (Loop::awaiting); the
  // requests after it wait.
  uint64_t awaiting = 0;
  bool parked = false;  // not read from until that answer comes (nothing to read, or too much)
};

// A request handled in this pass whose answer waits for the pass's journal
// writes.
struct PendingAnswer {
  Connection* connection;
  Answer answer;
  std::string interim;         // when not empty: these bytes instead (100 Continue)
  std::string log_line_start;  // peer and request line, for the access log
  Clock::time_point started;
};

// Answers given later (HttpResponder), left by any thread for a loop.
struct Mailbox {
  std::mutex mutex;
  std::vector<std::pair<uint64_t, HttpResponse>> answers;  // guarded by mutex
  bool open = true;  // guarded by mutex; false once the loop has stopped
  int event_fd = -1;  // written when answers come from another thread
  const void* loop = nullptr;  // the Loop it belongs to
  ~Mailbox() {
    if (event_fd >= 0) ::close(event_fd);  // not before: a responder may still write to it
  }
};

// A request whose answer comes later, and how to send it.
struct Awaiting {
  Connection* connection;
  std::string log_line_start;
  Clock::time_point started;
  bool close;          // the connection closes after the answer
  bool http10;         // an HTTP/1.0 client, told when the connection stays
  bool head_only;
  std::string cors_headers;  // for a listed Origin: the lines that let its page read the answer
  RouteStats* stats = nullptr;
};

// Makes `answer` say what the request asked of the connection: closed when
// the client or a stopping server wants it, kept (and said so to HTTP/1.0),
// without a body for HEAD.
void FitAnswerToRequest(const Awaiting& request, bool stopping, Answer* answer) {
  if (request.close || stopping) answer->close = true;
  // An HTTP/1.0 client keeps the connection only when told it may.
  if (!answer->close && request.http10) answer->extra_headers += "Connection: keep-alive\r\n";
  answer->head_only = request.head_only;
  answer->extra_headers += request.cors_headers;
}

// Tags of epoll_event.data.u64 besides a Connection*: the stop descriptor
// (0), the mailbox (kMailboxTag), or an EventLoop::Watcher* with its low bit set.
constexpr uint64_t kMailboxTag = 2;

struct Loop final : EventLoop {
  int epoll_fd = -1;
  int wake_fd = -1;  // readable once stopping
  std::thread thread;
  std::mutex mutex;  // guards `connections` against the acceptor
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections;
  // This loop's thread only:
  std::vector<Connection*> touched;
  std::vector<PendingAnswer> pending;
  // Connections closed during this pass, freed when it ends, so that no
  // pointer to them in `touched` or `pending` dangles.
  std::vector<std::unique_ptr<Connection>> closed;
  RequestHead head;
  Clock::time_point next_sweep;
  size_t last_synced = 0;  // increments the last pass waited for an fsync for
  std::shared_ptr<Mailbox> mailbox = std::make_shared<Mailbox>();
  std::unordered_map<uint64_t, Awaiting> awaiting;
  uint64_t last_request_id = 0;
  std::vector<Watcher*> tickers;

  bool Watch(int fd, uint32_t events, Watcher* watcher) override {
    epoll_event event{};
    event.events = events;
    event.data.u64 = reinterpret_cast<uintptr_t>(watcher) | 1;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &event) == 0) return true;
    return errno == ENOENT && ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) == 0;
  }
  void Unwatch(int fd) override { ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr); }
  void AddTicker(Watcher* watcher) override { tickers.push_back(watcher); }
  void RemoveTicker(Watcher* watcher) override { std::erase(tickers, watcher); }
};

thread_local Loop* current_loop = nullptr;

}  // namespace

std::optional<std::string> HttpRequest::Param(const std::string& name) const {
  std::string_view query = query_;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t equals = pair.find('=');
    std::string key = DecodePercent(pair.substr(0, equals), true);
    if (key != name) continue;
    return equals == std::string_view::npos ? std::string()
                                            : DecodePercent(pair.substr(equals + 1), true);
  }
  return std::nullopt;
}

std::vector<std::string> HttpRequest::HeaderValues(const std::string& name) const {
  std::vector<std::string> values;
  for (const auto& [header, value] : head_.headers) {
    if (EqualsIgnoringCase(header, name)) values.emplace_back(value);
  }
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
    case core::Code::kMoved: return 421;  // Misdirected Request, as Redis answers MOVED
    case core::Code::kUnavailable: return 503;
    case core::Code::kTimeout: return 504;
  }
  return 500;
}

HttpResponse ErrorResponse(const core::Status& status) {
  return {HttpStatusFor(status.code()), core::FormatError(status.message())};
}

EventLoop* EventLoop::Current() { return current_loop; }

std::string RouteLabel(std::string_view path) {
  std::string label;
  size_t at = 0;
  while (at < path.size()) {
    size_t end = path.find('/', at + 1);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(at, end - at);  // "/3", "/shards"
    bool digits = segment.size() > 1 && std::all_of(segment.begin() + 1, segment.end(),
                                                    [](char c) { return c >= '0' && c <= '9'; });
    label += digits ? std::string_view("/{k}") : segment;
    at = end;
  }
  return label;
}

struct HttpResponder::State {
  State(std::shared_ptr<Mailbox> mailbox, uint64_t request)
      : mailbox(std::move(mailbox)), request(request) {}
  ~State() {
    if (!answered.load()) {
      Deliver(HttpResponse{500, core::FormatError("internal error: the request went unanswered")});
    }
  }
  void Deliver(HttpResponse response) {
    bool wake = false;
    {
      std::lock_guard lock(mailbox->mutex);
      if (!mailbox->open) return;
      // The loop's own thread takes its answers after each event it serves;
      // another thread wakes it.
      wake = mailbox->answers.empty() && current_loop != mailbox->loop;
      mailbox->answers.emplace_back(request, std::move(response));
    }
    if (wake) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t written = ::write(mailbox->event_fd, &one, sizeof(one));
    }
  }

  std::shared_ptr<Mailbox> mailbox;
  uint64_t request;
  std::atomic<bool> answered{false};
};

void HttpResponder::operator()(HttpResponse response) const {
  if (state_->answered.exchange(true)) return;  // answered already
  state_->Deliver(std::move(response));
}

namespace {

// How a route's handler runs.
struct Route {
  enum class Kind { kInline, kBlocking, kAsync } kind = Kind::kInline;
  HttpHandler handler;             // kInline, kBlocking
  AsyncHttpHandler async_handler;  // kAsync
};

}  // namespace

struct HttpServer::Impl {
  explicit Impl(HttpServerOptions server_options) : options(std::move(server_options)) {}

  HttpServerOptions options;
  // path -> method -> handler; fixed before Listen(), read-only afterwards.
  std::map<std::string, std::map<std::string, Route>, std::less<>> routes;
  // path -> its counts (shared by paths of one label); fixed before Listen().
  std::map<std::string, RouteStats*, std::less<>> route_stats;
  std::shared_ptr<ServerStats> stats = std::make_shared<ServerStats>();
  std::unique_ptr<core::WorkerPool> blocking;  // made by Listen() if a route needs it
  // What new connections use for TLS (null: plain HTTP); swapped by SetTls().
  std::mutex tls_mutex;
  std::shared_ptr<const TlsContext> tls;  // guarded by tls_mutex
  int listen_fd = -1;
  int stop_fd = -1;  // readable once stopping: wakes the acceptor
  int port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<size_t>& open_connections = stats->open_connections;
  size_t next_loop = 0;  // the acceptor's only
  std::vector<std::unique_ptr<Loop>> loops;
  std::thread acceptor;

  std::string AllowedMethods(const std::string& path) const;
  // For a request whose Origin is in options.cors_origins: the header lines
  // that let that origin's page read the answer; otherwise empty.
  std::string CorsHeaders(const RequestHead& head) const;
  // The answer to OPTIONS on a known `path`: a CORS preflight, or the methods.
  Answer AnswerOptions(const RequestHead& head, const std::string& path) const;

  void Accept();
  void Run(Loop& loop);
  // Reads what has arrived on `c` and serves every whole request in it.
  void Read(Loop& loop, Connection& c);
  // Serves every whole request in c.received, queueing answers in loop.pending
  // (or, for refusals made before a request is parsed, in c.out).
  void ServeReceived(Loop& loop, Connection& c);
  // The answer to a request, or nullopt when it comes later: the handler got
  // an HttpResponder for `later`, and the connection waits for it.
  // `header`: the request's header, blank line included; `body`: its body
  // (decoded, if it came chunked).
  std::optional<Answer> Dispatch(Loop& loop, Connection& c, const RequestHead& head,
                                 std::string_view header, std::string_view body,
                                 size_t pending_index, const Awaiting& later);
  // Takes the answers left in the loop's mailbox.
  void TakeAnswers(Loop& loop);
  // Waits for the pass's journal writes, then puts every pending answer in
  // its connection's `out`.
  void WritePending(Loop& loop);
  // WritePending(), then sends every touched connection's answers.
  void FinishPass(Loop& loop);
  // Sends what c.out holds; afterwards closes or re-arms the connection.
  void Flush(Loop& loop, Connection& c);
  void Touch(Loop& loop, Connection& c);
  // Returns false if epoll refused.
  bool SetInterest(Loop& loop, Connection& c, bool writing);
  // Stops (or starts again) reading from a connection that waits for an
  // answer to come later. Returns false if epoll refused.
  bool SetParked(Loop& loop, Connection& c, bool parked);
  void Sweep(Loop& loop);
  void Close(Loop& loop, Connection* c);
  // Reads into `data` as recv() would (bytes, 0 at the end, -1 with errno),
  // through TLS if the connection has it.
  ssize_t Receive(Connection& c, char* data, size_t size);
  // Sends from `data` as send() would, through TLS if the connection has it.
  ssize_t Send(Connection& c, const char* data, size_t size);
};

std::string HttpServer::Impl::AllowedMethods(const std::string& path) const {
  std::string allowed;
  for (const auto& [method, handler] : routes.at(path)) {
    allowed += allowed.empty() ? method : ", " + method;
  }
  return allowed;
}

std::string HttpServer::Impl::CorsHeaders(const RequestHead& head) const {
  if (options.cors_origins.empty()) return "";
  const std::string_view* origin = head.Find("Origin");
  if (origin == nullptr || head.Count("Origin") != 1 ||
      std::find(options.cors_origins.begin(), options.cors_origins.end(), *origin) ==
          options.cors_origins.end()) {
    return "";
  }
  return fmt::format("Access-Control-Allow-Origin: {}\r\nVary: Origin\r\n", *origin);
}

Answer HttpServer::Impl::AnswerOptions(const RequestHead& head, const std::string& path) const {
  const std::string methods = AllowedMethods(path) + ", OPTIONS";
  const std::string_view* origin = head.Find("Origin");
  if (origin == nullptr || head.Find("Access-Control-Request-Method") == nullptr) {
    Answer answer;
    answer.status = 204;
    answer.extra_headers = fmt::format("Allow: {}\r\n", methods);
    return answer;
  }
  // A browser's preflight: may a page from `origin` send this request?
  if (CorsHeaders(head).empty()) {
    return ErrorAnswer(
        403, options.cors_origins.empty()
                 ? fmt::format("pages from other origins may not call this server; start serve "
                               "with --cors-origin {} to let them",
                               *origin)
                 : fmt::format("pages from {} may not call this server (not a --cors-origin)",
                               *origin));
  }
  Answer answer;
  answer.status = 204;
  answer.extra_headers = fmt::format(
      "Access-Control-Allow-Methods: {}\r\n"
      "Access-Control-Allow-Headers: Content-Type, Authorization, Idempotency-Key\r\n"
      "Access-Control-Max-Age: 600\r\n",
      methods);
  return answer;
}

void HttpServer::Impl::Accept() {
  for (;;) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (stopping) return;
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&address), &length,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors or memory: let the load ease rather than spin.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      continue;
    }
    if (open_connections.load(std::memory_order_relaxed) >= options.max_connections) {
      ::close(fd);
      continue;
    }
    int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    auto connection = std::make_unique<Connection>();
    connection->fd = fd;
    auto [ip, remote_port] = AddressOf(address);
    connection->remote = JoinHostPort(ip, remote_port);
    connection->deadline = Clock::now() + options.keep_alive_timeout;
    std::shared_ptr<const TlsContext> tls_context;
    {
      std::lock_guard lock(tls_mutex);
      tls_context = tls;
    }
    if (tls_context) {
      connection->tls = TlsSession::Accept(std::move(tls_context), fd);
      if (!connection->tls) {
        ::close(fd);
        continue;
      }
      // The handshake, then the first request, within the read deadline.
      connection->deadline = Clock::now() + options.read_timeout;
    }

    Loop& loop = *loops[next_loop++ % loops.size()];
    std::lock_guard lock(loop.mutex);
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.ptr = connection.get();
    if (::epoll_ctl(loop.epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
      ::close(fd);
      continue;
    }
    open_connections.fetch_add(1, std::memory_order_relaxed);
    loop.connections.emplace(connection.get(), std::move(connection));
  }
}

void HttpServer::Impl::Run(Loop& loop) {
  epoll_event events[kEventsPerWait];
  core::DurableBatch durable;
  current_loop = &loop;
  loop.next_sweep = Clock::now() + kSweepInterval;
  auto serve_events = [&](int n) {
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == 0) continue;  // the stop descriptor
      if (tag == kMailboxTag) {
        uint64_t count;
        [[maybe_unused]] ssize_t got = ::read(loop.mailbox->event_fd, &count, sizeof(count));
      } else if ((tag & 1) != 0) {
        reinterpret_cast<EventLoop::Watcher*>(tag & ~uint64_t{1})->OnReady(events[i].events);
      } else {
        auto* c = static_cast<Connection*>(events[i].data.ptr);
        if (c->awaiting != 0 && (events[i].events & (EPOLLERR | EPOLLHUP)) != 0) {
          Close(loop, c);  // gone before its answer came
        } else if (c->writing) {
          c->read_wants_write = false;  // writable: a TLS read that waited goes on
          Touch(loop, *c);  // Flush() sends the rest, then reads what waits
        } else {
          Read(loop, *c);
        }
      }
      TakeAnswers(loop);
      // Answers that wait for no journal write go out at once, so a slow
      // handler (a shard across the network that does not answer) holds up
      // no other connection's answer.
      if (!durable.has_deferred()) FinishPass(loop);
    }
  };
  // Once stopping, answers still to come get until the write deadline.
  Clock::time_point stop_deadline = Clock::time_point::max();
  while (!stopping || (!loop.awaiting.empty() && Clock::now() < stop_deadline)) {
    if (stopping && stop_deadline == Clock::time_point::max()) {
      stop_deadline = Clock::now() + options.write_timeout;
      ::epoll_ctl(loop.epoll_fd, EPOLL_CTL_DEL, stop_fd, nullptr);  // it stays readable
    }
    int n = ::epoll_wait(loop.epoll_fd, events, kEventsPerWait,
                         static_cast<int>(kSweepInterval.count()));
    if (n < 0 && errno != EINTR) return;
    serve_events(n);
    // Gathers the clients answered after the last fsync into this one, as
    // long as fewer have come back than that fsync carried.
    size_t synced = durable.awaiting_sync();
    if (synced > 0 && synced < loop.last_synced) {
      auto until = Clock::now() + kMaxGather;
      while (durable.awaiting_sync() < loop.last_synced && Clock::now() < until && !stopping) {
        n = ::epoll_wait(loop.epoll_fd, events, kEventsPerWait, 0);
        if (n > 0) serve_events(n);
      }
    }
    loop.last_synced = durable.awaiting_sync();
    FinishPass(loop);
    if (Clock::now() >= loop.next_sweep) {
      Sweep(loop);
      for (EventLoop::Watcher* ticker : std::vector(loop.tickers)) ticker->OnTick();
      TakeAnswers(loop);
      FinishPass(loop);
      loop.next_sweep = Clock::now() + kSweepInterval;
    }
  }
  {
    std::lock_guard lock(loop.mailbox->mutex);
    loop.mailbox->open = false;
    loop.mailbox->answers.clear();
  }
  current_loop = nullptr;
}

void HttpServer::Impl::TakeAnswers(Loop& loop) {
  std::vector<std::pair<uint64_t, HttpResponse>> answers;
  {
    std::lock_guard lock(loop.mailbox->mutex);
    if (loop.mailbox->answers.empty()) return;
    answers.swap(loop.mailbox->answers);
  }
  for (auto& [request, response] : answers) {
    auto found = loop.awaiting.find(request);
    if (found == loop.awaiting.end()) continue;  // its connection closed meanwhile
    Awaiting later = std::move(found->second);
    loop.awaiting.erase(found);
    Connection& c = *later.connection;
    c.awaiting = 0;
    Answer answer;
    answer.status = response.status;
    answer.body = std::move(response.body);
    answer.content_type = std::move(response.content_type);
    answer.stats = later.stats;
    FitAnswerToRequest(later, stopping, &answer);
    if (answer.close) c.closing = true;
    loop.pending.push_back({&c, std::move(answer), "", std::move(later.log_line_start),
                            later.started});
    Touch(loop, c);
    if (c.parked && !SetParked(loop, c, false)) c.closing = true;
    // The requests that came in behind it.
    ServeReceived(loop, c);
  }
}

void HttpServer::Impl::Touch(Loop& loop, Connection& c) {
  if (c.touched) return;
  c.touched = true;
  loop.touched.push_back(&c);
}

void HttpServer::Impl::Read(Loop& loop, Connection& c) {
  Touch(loop, c);
  const size_t max_buffered = options.max_header_bytes + options.max_body_bytes;
  size_t read_now = 0;  // a refused body is dropped, not buffered: cap it too
  while (c.received.size() < max_buffered && read_now < max_buffered &&
         !(c.refused && c.discard == 0)) {
    char chunk[kReadChunk];
    ssize_t n = Receive(c, chunk, sizeof(chunk));
    if (n > 0) {
      auto size = static_cast<size_t>(n);
      read_now += size;
      if (c.refused) {
        c.discard -= std::min<uint64_t>(c.discard, size);
      } else {
        if (c.received.empty()) c.started = Clock::now();
        c.received.append(chunk, size);
      }
      // A short read emptied the socket (through TLS: the socket, unless
      // the session holds data already decrypted); epoll says when more comes.
      if (size < sizeof(chunk) && (!c.tls || !c.tls->HasBuffered())) break;
    } else if (n == 0) {
      c.end_of_input = true;
      break;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (c.read_wants_write && !c.writing && !SetInterest(loop, c, true)) c.closing = true;
      break;
    } else {
      c.end_of_input = true;
      c.closing = true;
      c.received.clear();
      return;
    }
  }
  if (c.refused) {
    if (c.discard == 0) c.closing = true;
    return;
  }
  if (c.awaiting != 0) {
    // Waiting for an answer: stop reading once there is nothing more to
    // read, or no room for it, or epoll would report it again and again.
    if ((c.end_of_input || c.received.size() >= max_buffered) && !c.parked &&
        !SetParked(loop, c, true)) {
      c.closing = true;
    }
    return;
  }
  ServeReceived(loop, c);
}

namespace {

// Drops the first `length` bytes of c.received, a request now served.
void ForgetRequest(Connection& c, size_t length) {
  c.received.erase(0, length);
  c.scanned = 0;
  c.needed = 0;
  c.continued = false;
  c.started = Clock::now();
  if (c.chunked) {
    c.chunked = false;
    c.chunked_header = 0;
    c.chunks = ChunkedDecoder();
    c.body = std::string();  // up to max_body_bytes: not kept while the connection idles
  }
}

// How far the chunked body of a connection's request has come.
enum class ChunkedBody { kMore, kDone, kBad, kTooLarge };

// Decodes into c.body the bytes that c.received holds after the header of its
// chunked request, and drops them from c.received. Too large: more than
// `max_body_bytes` of data (as soon as a chunk's size announces it), or more
// than `max_framing_bytes` of the rest (size lines, extensions, CRLFs,
// trailers), so that neither many tiny chunks nor long extensions keep a
// connection reading without end.
ChunkedBody DecodeChunkedBody(Connection& c, size_t max_body_bytes, size_t max_framing_bytes) {
  auto too_large = [&] {
    return c.chunks.announced_data_bytes() > max_body_bytes ||
           c.chunks.framing_bytes() > max_framing_bytes;
  };
  std::string_view encoded = std::string_view(c.received).substr(c.chunked_header);
  size_t used = 0;
  // In pieces no longer than the data still allowed, plus a byte to see it go
  // over, so that c.body never holds more than max_body_bytes + 1.
  while (used < encoded.size() && c.chunks.state() == ChunkedDecoder::State::kMore &&
         !too_large()) {
    size_t allowed = max_body_bytes + 1 - static_cast<size_t>(c.chunks.data_bytes());
    used += c.chunks.Decode(encoded.substr(used, allowed), &c.body);
  }
  c.received.erase(c.chunked_header, used);
  if (c.chunks.state() == ChunkedDecoder::State::kBad) return ChunkedBody::kBad;
  if (too_large()) return ChunkedBody::kTooLarge;
  return c.chunks.state() == ChunkedDecoder::State::kDone ? ChunkedBody::kDone : ChunkedBody::kMore;
}

// Reads and drops what c.received holds of a refused chunked body (and
// anything after it: the connection closes). Returns true once it is time to
// close: the body ended (or went bad), more than kMaxDrainBytes of it came,
// or its deadline passed.
bool DrainChunkedBody(Connection& c) {
  if (c.chunks.state() == ChunkedDecoder::State::kMore) c.chunks.Decode(c.received, nullptr);
  c.received.clear();
  return c.chunks.state() != ChunkedDecoder::State::kMore ||
         c.chunks.data_bytes() + c.chunks.framing_bytes() > kMaxDrainBytes ||
         Clock::now() >= c.drain_deadline;
}

}  // namespace

void HttpServer::Impl::ServeReceived(Loop& loop, Connection& c) {
  // A client that sent "Expect: 100-continue" (curl does, for larger bodies)
  // waits for this before its body.
  auto continue_if_expected = [&] {
    if (c.continued || !ExpectsContinue(c.received)) return;
    c.continued = true;
    PendingAnswer interim{&c, {}, "", "", Clock::now()};
    interim.interim = "HTTP/1.1 100 Continue\r\n\r\n";
    loop.pending.push_back(std::move(interim));
  };
  // Refused before the request is parsed: answer, then close. Earlier
  // answers of this connection are still pending, so this one waits behind
  // them in the pass's list.
  auto refuse = [&](Answer answer) {
    answer.close = true;
    c.closing = true;
    loop.pending.push_back(
        {&c, std::move(answer), "", fmt::format("{} \"-\"", c.remote), Clock::now()});
  };

  while (!c.received.empty() && !c.closing && c.awaiting == 0) {
    if (c.draining) {
      if (DrainChunkedBody(c)) {
        c.closing = true;
        Touch(loop, c);  // closed once its answers are out
      }
      break;
    }
    RequestFrame frame;
    if (c.chunked) {
      ChunkedBody body = DecodeChunkedBody(c, options.max_body_bytes, options.max_header_bytes);
      if (body == ChunkedBody::kMore) {
        continue_if_expected();
        break;
      }
      if (body == ChunkedBody::kBad) {
        refuse(ErrorAnswer(
            400, fmt::format("malformed chunked body: send chunks as a size in hex (then any "
                             "extensions) and CRLF, that many bytes and CRLF, then 0, CRLF, "
                             "any trailer fields and CRLF; no line over {} bytes",
                             ChunkedDecoder::kMaxLineBytes)));
        c.received.clear();
        break;
      }
      if (body == ChunkedBody::kTooLarge) {
        refuse(ErrorAnswer(
            413,
            c.chunks.announced_data_bytes() > options.max_body_bytes
                ? fmt::format("the request body is larger than {} bytes", options.max_body_bytes)
                : fmt::format("the chunked request body has more than {} bytes of chunk "
                              "sizes, extensions and trailers: send fewer, larger chunks",
                              options.max_header_bytes)));
        // The client may send the whole body before it reads the answer:
        // read and drop the rest of it, then close.
        c.received.erase(0, c.chunked_header);
        c.body = std::string();
        c.draining = true;
        c.drain_deadline = c.started + options.read_timeout;
        c.closing = DrainChunkedBody(c) || c.end_of_input;
        break;
      }
      // The whole body is in, and c.received holds the header and whatever
      // came after the body.
      frame.kind = RequestFrame::Kind::kComplete;
      frame.length = frame.header_length = c.chunked_header;
    } else if (!c.tls && c.received.front() == kTlsHandshakeRecord) {
      // A TLS client on a plain port: answer at once, in plain HTTP (which
      // it reports as "wrong version number"), rather than let it wait for
      // a server hello until the read deadline.
      refuse(ErrorAnswer(400, "this port speaks plain HTTP, not TLS: use http://"));
      c.received.clear();
      break;
    } else {
      // Cheap tests first, so that a request dribbled in a byte at a time is
      // not framed again from its start on every byte.
      if (c.needed > c.received.size()) break;
      if (c.needed == 0 && c.received.size() <= options.max_header_bytes &&
          FindHeaderEnd(c.received, c.scanned) == std::string::npos) {
        c.scanned = c.received.size();
        break;
      }
      frame = FrameRequest(c.received, options.max_header_bytes, options.max_body_bytes);
    }
    if (frame.kind == RequestFrame::Kind::kChunked) {
      c.chunked = true;
      c.chunked_header = frame.header_length;
      continue;  // decodes as much of its body as came
    }
    if (frame.kind == RequestFrame::Kind::kIncomplete) {
      c.needed = frame.length;
      if (frame.length > 0) continue_if_expected();
      break;
    }
    if (frame.kind == RequestFrame::Kind::kComplete) {
      std::string_view request(c.received.data(), frame.length);
      size_t header_end = frame.header_length;
      std::string_view body = c.chunked ? std::string_view(c.body) : request.substr(header_end);
      Clock::time_point started = Clock::now();
      Answer answer;
      std::string log_line_start;
      if (!ParseRequestHead(request.substr(0, header_end), &loop.head)) {
        answer = ErrorAnswer(400,
                             "malformed request line: send METHOD /path HTTP/1.1 "
                             "(HTTP/1.0 and 1.1 only)",
                             true);
        log_line_start = fmt::format("{} \"-\"", c.remote);
      } else {
        const RequestHead& head = loop.head;
        // HTTP/1.1 keeps the connection unless told to close; 1.0 closes
        // unless asked to keep it.
        bool keep_alive = !head.HasToken("Connection", "close") &&
                          (head.minor_version == 1 || head.HasToken("Connection", "keep-alive"));
        if (options.access_log) {
          std::string_view path = head.target.substr(0, head.target.find('?'));
          log_line_start = fmt::format("{} \"{} {}\"", c.remote, head.method, path);
        }
        const Awaiting how{&c,
                           std::move(log_line_start),
                           started,
                           !keep_alive,
                           head.minor_version == 0,
                           head.method == "HEAD",
                           CorsHeaders(head)};
        std::optional<Answer> dispatched =
            Dispatch(loop, c, head, request.substr(0, header_end), body, loop.pending.size(), how);
        if (!dispatched) {
          // Answered later (TakeAnswers), and the requests behind it after that.
          ForgetRequest(c, frame.length);
          break;
        }
        answer = std::move(*dispatched);
        FitAnswerToRequest(how, stopping, &answer);
        log_line_start = how.log_line_start;
      }
      if (answer.close) c.closing = true;
      loop.pending.push_back({&c, std::move(answer), "", std::move(log_line_start), started});
      ForgetRequest(c, frame.length);
      continue;
    }
    Answer answer;
    if (frame.kind == RequestFrame::Kind::kHeaderTooLarge) {
      answer = ErrorAnswer(
          431, fmt::format("the request header is larger than {} bytes", options.max_header_bytes));
    } else if (frame.kind == RequestFrame::Kind::kBadLength) {
      answer = ErrorAnswer(400, "Content-Length must be one plain decimal number");
    } else if (frame.kind == RequestFrame::Kind::kBadHeader) {
      answer = ErrorAnswer(400,
                           "malformed request line or header: lines end in CRLF, names are tokens "
                           "followed by a colon, no control characters, no folded lines");
    } else if (frame.kind == RequestFrame::Kind::kRange) {
      answer = ErrorAnswer(416, "range requests are not supported");
    } else if (frame.kind == RequestFrame::Kind::kUnsupportedCoding) {
      answer = ErrorAnswer(501,
                           "the only transfer coding accepted is chunked, alone "
                           "(Transfer-Encoding: chunked, once); or send a Content-Length");
    } else if (frame.kind == RequestFrame::Kind::kCodingAndLength) {
      answer = ErrorAnswer(
          400, "a request may not carry both Transfer-Encoding and Content-Length: send one");
    } else if (frame.kind == RequestFrame::Kind::kCodingInHttp10) {
      answer = ErrorAnswer(400,
                           "HTTP/1.0 has no Transfer-Encoding: send the body with a "
                           "Content-Length, or use HTTP/1.1");
    } else {
      answer = ErrorAnswer(
          413, fmt::format("the request body is larger than {} bytes", options.max_body_bytes));
    }
    refuse(std::move(answer));
    if (frame.kind == RequestFrame::Kind::kBodyTooLarge && frame.body_bytes <= kMaxDrainBytes) {
      // The client sends the whole body before it reads the answer: read and
      // drop the rest of it, then close.
      uint64_t buffered = c.received.size() - frame.length;
      uint64_t rest = frame.body_bytes - std::min<uint64_t>(buffered, frame.body_bytes);
      if (rest > 0 && !c.end_of_input) {
        c.refused = true;
        c.discard = rest;
        c.closing = false;  // not until the body is read
      }
    }
    c.received.clear();
    break;
  }
}

std::optional<Answer> HttpServer::Impl::Dispatch(Loop& loop, Connection& c, const RequestHead& head,
                                                 std::string_view header, std::string_view body,
                                                 size_t pending_index, const Awaiting& later) {
  // Guards that run before the request is routed (FrameRequest has already
  // refused the transfer codings other than chunked). A refused request's
  // body may not have been read as the client meant it, so its connection
  // closes.
  if (head.Find("Content-Encoding") != nullptr) {
    return ErrorAnswer(415, "compressed request bodies are not accepted", true);
  }
  if (head.Count("Content-Length") > 1) {
    return ErrorAnswer(400, "more than one Content-Length header", true);
  }
  for (const auto& [name, value] : head.headers) {
    if (name.size() + value.size() > kMaxHeaderLineBytes) {
      return ErrorAnswer(
          431, fmt::format("a header line is longer than {} bytes", kMaxHeaderLineBytes), true);
    }
  }
  if (head.target.size() > kMaxTargetBytes) {
    return ErrorAnswer(414, fmt::format("the request URI is longer than {} bytes", kMaxTargetBytes),
                       true);
  }
  size_t question = head.target.find('?');
  std::string path = DecodePercent(head.target.substr(0, question), false);
  std::string_view query =
      question == std::string_view::npos ? std::string_view() : head.target.substr(question + 1);

  // OPTIONS, a CORS preflight among them, needs no token: browsers send none.
  if (head.method == "OPTIONS") {
    if (routes.find(path) == routes.end()) {
      return ErrorAnswer(404, fmt::format("no such path: {}", path));
    }
    return AnswerOptions(head, path);
  }

  if (!options.bearer_token.empty() &&
      std::find(options.open_paths.begin(), options.open_paths.end(), path) ==
          options.open_paths.end()) {
    const std::string_view* authorization = head.Find("Authorization");
    if (head.Count("Authorization") != 1 ||
        !BearerTokenMatches(std::string(*authorization), options.bearer_token)) {
      Answer answer =
          ErrorAnswer(401, authorization != nullptr
                               ? "the bearer token is wrong"
                               : "this server needs a token: send Authorization: Bearer <token>");
      answer.extra_headers = "WWW-Authenticate: Bearer\r\n";
      return answer;
    }
  }

  auto route = routes.find(path);
  if (route == routes.end()) return ErrorAnswer(404, fmt::format("no such path: {}", path));
  RouteStats* stats = route_stats.find(path)->second;
  bool head_only = head.method == "HEAD";
  auto handler = route->second.find(head_only ? std::string("GET") : std::string(head.method));
  if (handler == route->second.end()) {
    std::string allowed = AllowedMethods(path);
    Answer answer = ErrorAnswer(
        405, fmt::format("{} is not allowed on {}; use {}", head.method, path, allowed));
    answer.extra_headers = fmt::format("Allow: {}\r\n", allowed);
    answer.stats = stats;
    return answer;
  }

  const Route& route_to = handler->second;
  if (route_to.kind != Route::Kind::kInline) {
    uint64_t id = ++loop.last_request_id;
    HttpResponder respond(std::make_shared<HttpResponder::State>(loop.mailbox, id));
    Awaiting& awaiting = loop.awaiting.emplace(id, later).first->second;
    awaiting.stats = stats;
    c.awaiting = id;
    if (route_to.kind == Route::Kind::kAsync) {
      try {
        route_to.async_handler(HttpRequest(head, query, body), respond);
      } catch (const std::exception&) {
        respond(ErrorResponse(core::Internal("internal error while serving the request")));
      }
      return std::nullopt;
    }
    // Blocking: on a pool thread, with its own copy of the request (its
    // header, then its body as the handler sees it).
    blocking->Run([&handler = route_to.handler, respond, header_length = header.size(),
                   owned = std::string(header).append(body)] {
      RequestHead owned_head;
      ParseRequestHead(std::string_view(owned).substr(0, header_length), &owned_head);
      size_t at = owned_head.target.find('?');
      std::string_view owned_query =
          at == std::string_view::npos ? std::string_view() : owned_head.target.substr(at + 1);
      try {
        respond(handler(
            HttpRequest(owned_head, owned_query, std::string_view(owned).substr(header_length))));
      } catch (const std::exception&) {
        respond(ErrorResponse(core::Internal("internal error while serving the request")));
      }
    });
    return std::nullopt;
  }

  if (core::DurableBatch* durable = core::DurableBatch::Active()) {
    durable->BeginRequest(pending_index);
  }
  Answer answer;
  try {
    HttpResponse response = route_to.handler(HttpRequest(head, query, body));
    answer.status = response.status;
    answer.body = std::move(response.body);
    answer.content_type = std::move(response.content_type);
    answer.stats = stats;
  } catch (const std::exception&) {
    // Never a leaked message.
    answer = ErrorAnswer(500, "internal error while serving the request");
  }
  return answer;
}

void HttpServer::Impl::WritePending(Loop& loop) {
  if (core::DurableBatch* durable = core::DurableBatch::Active()) {
    for (auto& [request, status] : durable->Finish()) {
      Answer& answer = loop.pending[request].answer;
      HttpResponse error = ErrorResponse(status);
      answer.status = error.status;
      answer.body = std::move(error.body);
    }
  }
  for (PendingAnswer& pending : loop.pending) {
    if (!pending.interim.empty()) {
      pending.connection->out.append(pending.interim);
      continue;
    }
    AppendAnswer(pending.answer, &pending.connection->out);
    if (options.metrics != nullptr) {
      RouteStats* route = pending.answer.stats ? pending.answer.stats : &stats->other;
      route->Count(pending.answer.status, Clock::now() - pending.started);
    }
    if (options.access_log) {
      auto took = Clock::now() - pending.started;
      options.access_log(fmt::format("{} {} {} {:.2f}ms", pending.log_line_start,
                                     pending.answer.status, pending.answer.body.size(),
                                     std::chrono::duration<double, std::milli>(took).count()));
    }
  }
  loop.pending.clear();
}

void HttpServer::Impl::FinishPass(Loop& loop) {
  WritePending(loop);
  // Flush() may serve requests still buffered (after a write that had to
  // wait), which touches connections again: loop until none is left.
  while (!loop.touched.empty()) {
    std::vector<Connection*> touched;
    touched.swap(loop.touched);
    for (Connection* c : touched) {
      c->touched = false;
      if (!c->closed) Flush(loop, *c);
    }
    WritePending(loop);
  }
  loop.closed.clear();
}

void HttpServer::Impl::Flush(Loop& loop, Connection& c) {
  size_t sent = 0;
  while (sent < c.out.size()) {
    ssize_t n = Send(c, c.out.data() + sent, c.out.size() - sent);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      Close(loop, &c);  // the client is gone
      return;
    }
  }
  c.out.erase(0, sent);
  Clock::time_point now = Clock::now();
  if (!c.out.empty()) {
    // The client does not read as fast as it asks: stop reading from it
    // until its answers are out.
    // One deadline for the answers waiting, however slowly they are read.
    if (!c.writing) c.deadline = now + options.write_timeout;
    if (!SetInterest(loop, c, true)) Close(loop, &c);
    return;
  }
  // A TLS read waits for the socket to be writable: Run() clears this then.
  if (c.read_wants_write && !c.closing) return;
  if (c.awaiting != 0 && !c.closing) {
    // Its next answer is still to come; no deadline but the handler's.
    if (c.writing && !SetInterest(loop, c, false)) Close(loop, &c);
    return;
  }
  if (c.closing || c.end_of_input) {
    Close(loop, &c);
    return;
  }
  if (c.writing) {
    if (!SetInterest(loop, c, false)) {
      Close(loop, &c);
      return;
    }
    // Requests that arrived while the answers waited. Through TLS, read
    // first: a read that waited for the socket to be writable goes on now,
    // and data already decrypted has no event to announce it.
    if (c.tls) {
      Read(loop, c);
    } else {
      ServeReceived(loop, c);
    }
    if (!loop.pending.empty() || !c.out.empty()) Touch(loop, c);
  }
  c.deadline = c.received.empty() && !c.refused ? now + options.keep_alive_timeout
                                                : c.started + options.read_timeout;
}

bool HttpServer::Impl::SetInterest(Loop& loop, Connection& c, bool writing) {
  if (c.writing == writing) return true;
  c.writing = writing;
  epoll_event event{};
  event.events = writing ? EPOLLOUT : EPOLLIN | EPOLLRDHUP;
  event.data.ptr = &c;
  return ::epoll_ctl(loop.epoll_fd, EPOLL_CTL_MOD, c.fd, &event) == 0;
}

bool HttpServer::Impl::SetParked(Loop& loop, Connection& c, bool parked) {
  c.parked = parked;
  if (!parked && c.end_of_input) return true;  // nothing more to read: stays parked in epoll
  epoll_event event{};
  event.events = parked ? 0 : EPOLLIN | EPOLLRDHUP;
  event.data.ptr = &c;
  return ::epoll_ctl(loop.epoll_fd, EPOLL_CTL_MOD, c.fd, &event) == 0;
}

void HttpServer::Impl::Sweep(Loop& loop) {
  Clock::time_point now = Clock::now();
  std::vector<Connection*> expired;
  {
    std::lock_guard lock(loop.mutex);
    for (auto& [pointer, c] : loop.connections) {
      if (c->deadline <= now && c->awaiting == 0) expired.push_back(pointer);
    }
  }
  for (Connection* c : expired) {
    if (!c->writing && (!c->received.empty() || c->refused)) {
      // Best effort: a client this slow may not read it.
      std::string answer;
      AppendAnswer(
          ErrorAnswer(
              408,
              fmt::format("the request did not arrive within {} ms; send it whole, promptly",
                          options.read_timeout.count()),
              true),
          &answer);
      [[maybe_unused]] ssize_t sent = Send(*c, answer.data(), answer.size());
    }
    Close(loop, c);
  }
}

void HttpServer::Impl::Close(Loop& loop, Connection* c) {
  std::unique_ptr<Connection> owned;
  {
    std::lock_guard lock(loop.mutex);
    auto it = loop.connections.find(c);
    if (it == loop.connections.end()) return;
    owned = std::move(it->second);
    loop.connections.erase(it);
  }
  if (owned->awaiting != 0) loop.awaiting.erase(owned->awaiting);
  if (owned->tls) owned->tls->Shutdown();
  ::epoll_ctl(loop.epoll_fd, EPOLL_CTL_DEL, owned->fd, nullptr);
  ::close(owned->fd);
  owned->closed = true;
  loop.closed.push_back(std::move(owned));
  open_connections.fetch_sub(1, std::memory_order_relaxed);
}

ssize_t HttpServer::Impl::Receive(Connection& c, char* data, size_t size) {
  if (!c.tls) return ::recv(c.fd, data, size, 0);
  size_t moved = 0;
  switch (c.tls->Read(data, size, &moved)) {
    case TlsIo::kDone:
      return static_cast<ssize_t>(moved);
    case TlsIo::kWantWrite:
      c.read_wants_write = true;
      [[fallthrough]];
    case TlsIo::kWantRead:
      errno = EAGAIN;
      return -1;
    case TlsIo::kClosed:
      return 0;
    case TlsIo::kFailed:
      break;
  }
  if (c.tls->plain_http()) {
    // As nginx does: say it in plain HTTP, which is what the client reads.
    std::string answer;
    AppendAnswer(ErrorAnswer(400, "this port speaks HTTPS: use an https:// URL", true), &answer);
    [[maybe_unused]] ssize_t sent =
        ::send(c.fd, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  stats->tls_failures.fetch_add(1, std::memory_order_relaxed);
  errno = ECONNABORTED;
  return -1;
}

ssize_t HttpServer::Impl::Send(Connection& c, const char* data, size_t size) {
  if (!c.tls) return ::send(c.fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
  size_t moved = 0;
  switch (c.tls->Write(data, size, &moved)) {
    case TlsIo::kDone:
      return static_cast<ssize_t>(moved);
    case TlsIo::kWantRead:  // never after the handshake: no renegotiation
    case TlsIo::kWantWrite:
      errno = EAGAIN;
      return -1;
    case TlsIo::kClosed:
    case TlsIo::kFailed:
      break;
  }
  errno = EPIPE;
  return -1;
}

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->tls = impl_->options.tls;
}

void HttpServer::SetTls(std::shared_ptr<const TlsContext> tls) {
  std::lock_guard lock(impl_->tls_mutex);
  impl_->tls = std::move(tls);
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(const std::string& method, const std::string& path, HttpHandler handler) {
  impl_->routes[path][method] = Route{Route::Kind::kInline, std::move(handler), {}};
  impl_->route_stats[path] = impl_->stats->ForPath(path);
}

void HttpServer::HandleBlocking(const std::string& method, const std::string& path,
                                HttpHandler handler) {
  impl_->routes[path][method] = Route{Route::Kind::kBlocking, std::move(handler), {}};
  impl_->route_stats[path] = impl_->stats->ForPath(path);
  if (!impl_->blocking) {
    impl_->blocking = std::make_unique<core::WorkerPool>(std::max(1, impl_->options.blocking_threads));
  }
}

void HttpServer::HandleAsync(const std::string& method, const std::string& path,
                             AsyncHttpHandler handler) {
  impl_->routes[path][method] = Route{Route::Kind::kAsync, {}, std::move(handler)};
  impl_->route_stats[path] = impl_->stats->ForPath(path);
}

core::Status HttpServer::Listen(const std::string& host, int port) {
  auto unavailable = [&](int error) {
    std::string why = error == 0 ? "the address is not available here" : std::strerror(error);
    if (error == EADDRINUSE) why = "the port is already in use (is another shardctl running?)";
    return core::Unavailable(fmt::format("cannot listen on {}: {}", JoinHostPort(host, port), why));
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found) != 0) {
    return unavailable(0);
  }
  int error = 0;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    // SO_REUSEADDR only: SO_REUSEPORT would let a second server bind the same
    // port silently and split the traffic.
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, kListenBacklog) != 0) {
      error = errno;
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) return unavailable(error);
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  impl_->listen_fd = fd;
  impl_->port = AddressOf(bound).second;

  auto cannot_serve = [&] {
    return core::Unavailable(fmt::format("cannot serve on {}: {}", JoinHostPort(host, impl_->port),
                                         std::strerror(errno)));
  };
  impl_->stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl_->stop_fd < 0) return cannot_serve();
  for (int i = 0; i < std::max(1, impl_->options.threads); ++i) {
    auto loop = std::make_unique<Loop>();
    loop->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (loop->epoll_fd < 0) return cannot_serve();
    epoll_event wake{};
    wake.events = EPOLLIN;  // level-triggered: once written, the loop sees it every time
    wake.data.ptr = nullptr;
    if (::epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, impl_->stop_fd, &wake) != 0) {
      ::close(loop->epoll_fd);
      return cannot_serve();
    }
    loop->mailbox->loop = loop.get();
    loop->mailbox->event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_event mail{};
    mail.events = EPOLLIN;
    mail.data.u64 = kMailboxTag;
    if (loop->mailbox->event_fd < 0 ||
        ::epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->mailbox->event_fd, &mail) != 0) {
      ::close(loop->epoll_fd);
      return cannot_serve();
    }
    impl_->loops.push_back(std::move(loop));
  }
  for (auto& loop : impl_->loops) {
    loop->thread = std::thread([this, &loop = *loop] { impl_->Run(loop); });
  }
  if (impl_->options.metrics != nullptr) {
    impl_->stats->listener = impl_->options.listener;
    core::Registry& registry = *impl_->options.metrics;
    registry.Declare("shardctl_http_requests_total", core::Registry::Type::kCounter,
                     "HTTP requests answered, by listener, route and status code.");
    registry.Declare("shardctl_http_request_duration_seconds", core::Registry::Type::kHistogram,
                     "Time from a request's first byte to its answer, by listener and route.");
    registry.Declare("shardctl_http_connections_open", core::Registry::Type::kGauge,
                     "Client connections open, by listener.");
    registry.Declare("shardctl_tls_failures_total", core::Registry::Type::kCounter,
                     "TLS connections that failed (handshake refused: unknown CA, no client "
                     "certificate, plain HTTP to a TLS port, ...), by listener.");
    impl_->stats->tls = impl_->options.tls != nullptr;
    registry.AddCollector([stats = impl_->stats](core::MetricSink& sink) { stats->Collect(sink); });
  }
  impl_->acceptor = std::thread([this] { impl_->Accept(); });
  return {};
}

int HttpServer::port() const { return impl_->port; }

std::string HttpServer::ServeBytesForTesting(std::string_view bytes) {
  Loop loop;
  Connection c;
  c.remote = "test";
  c.received = bytes;
  c.end_of_input = true;
  core::DurableBatch durable;
  impl_->ServeReceived(loop, c);
  while (!loop.awaiting.empty()) {
    impl_->TakeAnswers(loop);
    if (!loop.awaiting.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->WritePending(loop);
  return c.out;
}

void HttpServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  if (impl_->stop_fd >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(impl_->stop_fd, &one, sizeof(one));
  }
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  // Answers still waiting for a slow reader were answers to requests that
  // were served: they get until the write deadline to go out.
  const Clock::time_point deadline = Clock::now() + impl_->options.write_timeout;
  for (auto& loop : impl_->loops) {
    if (loop->thread.joinable()) loop->thread.join();
    for (auto& [pointer, c] : loop->connections) {
      SendAll(c->fd, c->out, deadline);
      ::close(c->fd);
    }
    loop->connections.clear();
    ::close(loop->epoll_fd);
  }
  impl_->loops.clear();
  if (impl_->listen_fd >= 0) ::close(impl_->listen_fd);
  if (impl_->stop_fd >= 0) ::close(impl_->stop_fd);
  impl_->listen_fd = impl_->stop_fd = -1;
}

}  // namespace shardctl::net
