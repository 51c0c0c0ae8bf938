// HttpServer: a hardened JSON-over-HTTP server, the only place that knows how
// cpp-httplib serves. It applies every guard that Debian's cpp-httplib 0.11.4
// needs (TCP_NODELAY, a sized thread pool, no SO_REUSEPORT, a deep listen
// backlog, request smuggling and decompression-bomb guards, a payload cap, an
// exception handler) and answers every error, 404 and 405 included, in JSON.
// Handlers run on the server's worker threads, concurrently.
#ifndef SHARDCTL_NET_HTTP_SERVER_H_
#define SHARDCTL_NET_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace httplib {
struct Request;
}

namespace shardctl::net {

struct HttpServerOptions {
  // Worker threads. Each keep-alive connection holds one while it is open.
  int threads = 64;
  // Largest request body accepted; larger ones get 413.
  size_t max_body_bytes = 64 * 1024;
  // How long a request may take to arrive once its connection is open.
  std::chrono::seconds read_timeout{5};
  // How long an idle keep-alive connection is kept. It also bounds how long
  // Stop() waits for idle clients, so it is short.
  std::chrono::seconds keep_alive_timeout{1};
};

// A request as handlers see it. Valid only during the handler call.
class HttpRequest {
 public:
  std::string_view body() const;
  // The first value of query parameter `name`, if the query has it.
  std::optional<std::string> Param(const std::string& name) const;
  // Every value of header `name` (matched without regard to case), in order.
  std::vector<std::string> HeaderValues(const std::string& name) const;

 private:
  friend class HttpServer;
  explicit HttpRequest(const httplib::Request& request) : request_(request) {}
  const httplib::Request& request_;
};

// A JSON answer.
struct HttpResponse {
  int status = 200;
  std::string body;
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

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options = {});
  ~HttpServer();  // Stops, if still serving.
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes `method` requests for exactly `path` to `handler`.
  // REQUIRES: called before Listen().
  void Handle(const std::string& method, const std::string& path, HttpHandler handler);

  // Binds host:port (port 0 picks a free one) and serves on background
  // threads. Returns OK once connections are accepted, or kUnavailable naming
  // the address and why (e.g. the port is in use).
  core::Status Listen(const std::string& host, int port);

  // The bound port. REQUIRES: Listen() succeeded.
  int port() const;

  // Stops accepting, finishes requests in flight and returns once every
  // worker has finished (at most about keep_alive_timeout for idle clients).
  // Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_HTTP_SERVER_H_
