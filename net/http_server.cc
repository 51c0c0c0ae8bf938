#include "net/http_server.h"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

#include "core/protocol.h"
#include "net/url.h"

namespace shardctl::net {
namespace {

constexpr char kJson[] = "application/json";
constexpr int kListenBacklog = 1024;

// httplib::Server with a deep listen backlog: httplib listens with 5, which
// drops connections under any real load.
class BackloggedServer : public httplib::Server {
 public:
  bool DeepenBacklog() { return ::listen(svr_sock_, kListenBacklog) == 0; }
};

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
  HttpServerOptions options;
  BackloggedServer server;
  // path -> method -> handler; fixed before Listen(), read-only afterwards.
  std::map<std::string, std::map<std::string, HttpHandler>> routes;
  std::thread listener;
  std::atomic<bool> listener_done{false};
  int port = 0;

  void Configure();
  std::string AllowedMethods(const std::string& path) const;
};

void HttpServer::Impl::Configure() {
  const int threads = options.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_tcp_nodelay(true);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second
  // server bind the same port silently and split the traffic.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server.set_keep_alive_max_count(1u << 30);
  server.set_keep_alive_timeout(options.keep_alive_timeout.count());
  server.set_read_timeout(options.read_timeout.count(), 0);
  server.set_write_timeout(5, 0);
  server.set_payload_max_length(options.max_body_bytes);

  // Guards that run before the body is read.
  server.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
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

HttpServer::HttpServer(HttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
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
  impl_->listener = std::thread([this] {
    impl_->server.listen_after_bind();
    impl_->listener_done = true;
  });
  // stop() is ignored until the accept loop runs, so wait for it.
  while (!impl_->server.is_running() && !impl_->listener_done) std::this_thread::yield();
  return {};
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::Stop() {
  if (!impl_->listener.joinable()) return;
  impl_->server.stop();
  impl_->listener.join();
}

}  // namespace shardctl::net
