// HttpServer: a hardened JSON-over-HTTP/1.1 server, built for many small
// requests on few cores. A few event-loop threads each own a share of the
// connections (epoll, level-triggered): a loop reads what has arrived, frames
// and parses each whole request itself (net/request_framing.h, strict where
// HTTP parsers are lenient in ways that enable smuggling), runs its handler
// inline, waits once for the journal writes of everything it handled in that
// pass (core/durable_batch.h) and answers each connection with one send.
// Idle and slow connections (slow loris) hold a descriptor each, never a
// thread. Bodies come with a Content-Length or in the chunked transfer coding
// (decoded as they arrive; handlers see the decoded body). Guards: caps on
// header and body size (a chunked body's framing included), a deadline for
// each request to arrive, no other Transfer-Encoding (501), no
// Content-Encoding, nothing that two parsers could frame differently
// (Transfer-Encoding with Content-Length, a malformed chunk: 400 and the
// connection closed), bearer auth, and every error (404 and 405 included)
// answered in JSON. Handlers run on the loop threads, concurrently; one that
// blocks holds up the other connections of its loop, so a server whose
// handlers wait on the network gets more loops, or registers them as blocking
// (they run on a pool of threads instead) or asynchronous (they start the
// work, watch their own descriptors in the loop's epoll through
// net/event_loop.h, and answer later through an HttpResponder). While a
// connection waits for such an answer, its next requests wait behind it, so
// answers keep the order of the requests.
#ifndef SHARDCTL_NET_HTTP_SERVER_H_
#define SHARDCTL_NET_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/metrics.h"
#include "core/status.h"

namespace shardctl::net {

struct RequestHead;
class TlsContext;

struct HttpServerOptions {
  // Event-loop threads: how many requests are handled at the same time.
  // Idle and half-sent connections do not hold one.
  int threads = 2;
  // Largest request body accepted (decoded, for a chunked one); larger ones
  // get 413.
  size_t max_body_bytes = 64 * 1024;
  // Largest request line plus header lines accepted; larger ones get 431.
  // Also the most a chunked body may spend on its framing (chunk sizes,
  // extensions, trailers); more gets 413.
  size_t max_header_bytes = 16 * 1024;
  // How long a request may take to arrive, from its first byte to its last;
  // a slower one gets 408 and its connection is closed.
  std::chrono::milliseconds read_timeout{5000};
  // How long a connection may stay open with no request under way.
  std::chrono::milliseconds keep_alive_timeout{1000};
  // How long writing one answer may take.
  std::chrono::milliseconds write_timeout{5000};
  // Connections open at once; more are closed as soon as they are accepted.
  size_t max_connections = 10000;
  // When not empty, every request to a path outside `open_paths` must carry
  // "Authorization: Bearer <bearer_token>" (compared in constant time), or
  // gets 401 with "WWW-Authenticate: Bearer" and nothing else happens.
  std::string bearer_token;
  std::vector<std::string> open_paths = {"/healthz"};
  // When set, called once per answered request with one access-log line:
  // `127.0.0.1:53422 "POST /increment" 200 41 0.12ms` (peer, request line
  // without the query, status, body bytes, time to answer).
  std::function<void(const std::string& line)> access_log;
  // Threads that run the handlers registered with HandleBlocking.
  int blocking_threads = 16;
  // Origins ("https://app.example.com") whose web pages may call this server
  // (CORS). A preflight (OPTIONS with Origin and
  // Access-Control-Request-Method) from one of them is answered 204 with the
  // path's methods and the headers shardctl reads; from any other origin,
  // 403. Answers to a listed Origin carry Access-Control-Allow-Origin; to
  // any other, nothing, so the browser keeps them from the page.
  std::vector<std::string> cors_origins;
  // When set, every answered request is counted in it, by route and status
  // (shardctl_http_requests_total) with its time to answer
  // (shardctl_http_request_duration_seconds), and the open connections
  // shown (shardctl_http_connections_open), all labelled listener=`listener`.
  // A route's label is its path with a shard number as {k}
  // ("/shards/{k}/increment"); a path with no route is "other".
  // REQUIRES: outlives the server's Listen() to its Stop().
  core::Registry* metrics = nullptr;
  std::string listener;
  // When set, every connection speaks TLS with this context (net/tls.h):
  // HTTPS only, and client certificates required if it says so. A plain
  // HTTP request to it gets a plain 400 saying to use https://.
  std::shared_ptr<const TlsContext> tls;
};

// A route's label in metrics: `path` with every segment of digits as {k}.
std::string RouteLabel(std::string_view path);

// A request as handlers see it. Valid only during the handler call.
class HttpRequest {
 public:
  std::string_view body() const { return body_; }
  // The first value of query parameter `name`, if the query has it.
  std::optional<std::string> Param(const std::string& name) const;
  // Every value of header `name` (matched without regard to case), in order.
  std::vector<std::string> HeaderValues(const std::string& name) const;

  // For the server: views into the received request, which must outlive this.
  HttpRequest(const RequestHead& head, std::string_view query, std::string_view body)
      : head_(head), query_(query), body_(body) {}

 private:
  const RequestHead& head_;
  std::string_view query_;
  std::string_view body_;
};

// An answer: JSON unless `content_type` says otherwise.
struct HttpResponse {
  HttpResponse() = default;
  HttpResponse(int status, std::string body, std::string content_type = "")
      : status(status), body(std::move(body)), content_type(std::move(content_type)) {}

  int status = 200;
  std::string body;
  std::string content_type;  // empty: application/json
};

// The HTTP status for a failure of kind `code`.
int HttpStatusFor(core::Code code);
// A JSON error answer for `status`: {"error": message} with HttpStatusFor().
// REQUIRES: !status.ok().
HttpResponse ErrorResponse(const core::Status& status);

// 200 with format(*result) when `result` is ok; otherwise ErrorResponse().
template <typename T, typename Format>
HttpResponse Respond(const core::Result<T>& result, const Format& format) {
  if (!result.ok()) return ErrorResponse(result.status());
  return {200, format(*result)};
}

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// The answer to one request, given later: call it once, from any thread.
// Copies answer the same request; if the last copy goes uncalled, the
// request is answered 500. An answer to a connection that closed meanwhile,
// or to a server that stopped, is dropped.
class HttpResponder {
 public:
  void operator()(HttpResponse response) const;

  struct State;
  explicit HttpResponder(std::shared_ptr<State> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<State> state_;
};

// Starts serving a request whose answer comes later, through `respond`; must
// not block. The request is valid only during the call.
using AsyncHttpHandler = std::function<void(const HttpRequest& request, HttpResponder respond)>;

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options = {});
  ~HttpServer();  // Stops, if still serving.
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes `method` requests for exactly `path` to `handler`.
  // REQUIRES: called before Listen().
  void Handle(const std::string& method, const std::string& path, HttpHandler handler);
  // The same for a handler that may block: it runs on one of
  // options.blocking_threads threads, never on a loop's.
  void HandleBlocking(const std::string& method, const std::string& path, HttpHandler handler);
  // The same for a handler that answers later (see AsyncHttpHandler).
  void HandleAsync(const std::string& method, const std::string& path, AsyncHttpHandler handler);

  // Binds host:port (port 0 picks a free one) and serves on background
  // threads. Returns OK once connections are accepted, or kUnavailable naming
  // the address and why (e.g. the port is in use).
  core::Status Listen(const std::string& host, int port);

  // The bound port. REQUIRES: Listen() succeeded.
  int port() const;

  // From now on, new connections use `tls` (a certificate renewed); open
  // ones keep the context they began with. Thread-safe.
  // REQUIRES: options.tls was set (a plain server stays plain) and `tls` is not null.
  void SetTls(std::shared_ptr<const TlsContext> tls);

  // For tests and fuzzing, with no socket and no threads: serves `bytes` as if
  // one connection had sent them and then finished sending, and returns every
  // byte the server would have sent back. Needs no Listen().
  std::string ServeBytesForTesting(std::string_view bytes);

  // Stops accepting, finishes requests in flight (answering them with
  // Connection: close), closes every connection and returns once every loop
  // has finished. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_HTTP_SERVER_H_
