// HttpClient: JSON requests to one server over a pool of keep-alive
// connections (HTTP/1.1, TCP_NODELAY, each request in one send). Thread-safe:
// each call borrows its own connection, so calls run in parallel. Written
// here rather than taken from cpp-httplib, whose shared library costs every
// `shardctl inc` about 3 ms of start-up (it loads and initialises OpenSSL,
// zlib and brotli) and each request five extra poll() calls.
#ifndef SHARDCTL_NET_HTTP_CLIENT_H_
#define SHARDCTL_NET_HTTP_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "net/url.h"

namespace shardctl::net {

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{1000};
  // How long a request may wait for its answer once sent.
  std::chrono::milliseconds request_timeout{5000};
  // When not empty, every request carries "Authorization: Bearer <token>".
  std::string bearer_token;
};

// Extra request headers: name, value.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpReply {
  int status = 0;
  std::string body;
};

class HttpClient {
 public:
  HttpClient(Url url, HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Each returns the server's answer, whatever its status, or a transport
  // failure naming the server: kUnavailable when the request surely never
  // reached it (could not connect), kTimeout when the outcome is unknown (sent,
  // but no complete answer in time).
  core::Result<HttpReply> Get(const std::string& path, const HttpHeaders& headers = {});
  core::Result<HttpReply> Post(const std::string& path, const std::string& json_body,
                               const HttpHeaders& headers = {});

  const Url& url() const { return url_; }

 private:
  struct Pool;
  core::Result<HttpReply> Send(bool post, const std::string& path, const std::string& body,
                               const HttpHeaders& headers);

  Url url_;
  HttpClientOptions options_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_HTTP_CLIENT_H_
