// HttpClient: JSON requests to one server over a pool of keep-alive
// connections (HTTP/1.1, TCP_NODELAY, each request in one send; answers of a
// known length or chunked), and HttpStream for answers that keep coming.
// An https:// URL puts every connection in TLS (net/tls.h): the server's
// certificate checked against its host, a pooled connection keeping its
// session; a plain http:// URL costs nothing more for it.
// Thread-safe: each call borrows its own connection, so calls run in
// parallel. Written here rather than taken from cpp-httplib, whose shared
// library costs every `shardctl inc` about 3 ms of start-up (it loads and
// initialises OpenSSL, zlib and brotli) and each request five extra poll() calls.
#ifndef SHARDCTL_NET_HTTP_CLIENT_H_
#define SHARDCTL_NET_HTTP_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "net/url.h"

namespace shardctl::net {

class TlsContext;

struct HttpClientOptions {
  // Bounds the TCP connect, then (https://) the TLS handshake.
  std::chrono::milliseconds connect_timeout{1000};
  // How long a request may wait for its answer once sent.
  std::chrono::milliseconds request_timeout{5000};
  // When not empty, every request carries "Authorization: Bearer <token>".
  std::string bearer_token;
  // A larger answer body is not taken: the call fails as kTimeout does
  // (a body announced larger, as kBadGateway).
  size_t max_answer_bytes = 64 * 1024 * 1024;
  // For https:// URLs: what the connections trust and present. Null: the
  // process's (net::TlsClientContext(), read again for each new connection,
  // so that a SetTlsClientFiles reaches the clients already made). (`{}`:
  // designated initializers may leave it out without g++'s warning.)
  std::shared_ptr<const TlsContext> tls{};
};

// Makes every connection this process opens from now on leave from `ip`
// (as Redis's bind-source-addr), where it can: to a loopback destination
// always, to another only when `ip` is not a loopback address itself. A
// node bound to one address then talks to the others, and to etcd, from
// that address alone, so that cutting it off cuts all of its traffic.
// "" (the default): the system picks. Call before any connection is made.
void SetSourceAddress(const std::string& ip);

// Extra request headers: name, value.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpReply {
  int status = 0;
  std::string body;
};

// The answer to a request whose body keeps coming (etcd's watch), read as it
// arrives over a connection of its own that closes with it. Not thread-safe:
// one reader.
class HttpStream {
 public:
  ~HttpStream();
  HttpStream(const HttpStream&) = delete;
  HttpStream& operator=(const HttpStream&) = delete;

  int status() const { return status_; }

  // Waits until `deadline` for more of the body. Returns the body's bytes
  // that arrived (decoded from the chunked coding), empty if none came in
  // time. Fails with kUnavailable if the connection closed or broke before
  // the body ended, or once the body has ended; kBadGateway if the body is
  // not in the coding its header announced.
  core::Result<std::string> Read(std::chrono::steady_clock::time_point deadline);

  // True once the whole body has arrived.
  bool ended() const;

 private:
  friend class HttpClient;
  struct Impl;
  HttpStream(int status, std::unique_ptr<Impl> impl);

  int status_;
  std::unique_ptr<Impl> impl_;
};

class HttpClient {
 public:
  HttpClient(Url url, HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Each returns the server's answer, whatever its status, or a transport
  // failure naming the server: kUnavailable when the request surely never
  // reached it (could not connect; or TLS failed: "TLS: cannot verify
  // https://HOST:PORT: certificate has expired", "TLS: with https://...: the
  // server refused our client certificate (...)", also when the server says
  // so only in answer to the request, as a TLS 1.3 server refusing the
  // client's certificate does), kTimeout when the outcome is unknown (sent,
  // but no complete answer in time, or the connection or its TLS session
  // closed or broke first), kBadGateway when the answer is not HTTP/1.x.
  core::Result<HttpReply> Get(const std::string& path, const HttpHeaders& headers = {});
  core::Result<HttpReply> Post(const std::string& path, const std::string& json_body,
                               const HttpHeaders& headers = {});

  // Sends a POST on a new connection and returns as soon as the answer's
  // status line and header are in, its body still to read. Failures as Post's.
  core::Result<std::unique_ptr<HttpStream>> PostStream(const std::string& path,
                                                       const std::string& json_body);

  const Url& url() const { return url_; }
  const HttpClientOptions& options() const { return options_; }

  // The bytes of a request as this client sends it.
  std::string FormatRequest(bool post, const std::string& path, const std::string& body,
                            const HttpHeaders& headers) const;

 private:
  struct Pool;
  core::Result<HttpReply> Send(bool post, const std::string& path, const std::string& body,
                               const HttpHeaders& headers);

  Url url_;
  HttpClientOptions options_;
  std::unique_ptr<Pool> pool_;
};

// AsyncHttpClient: requests sent from an event loop's thread
// (net/event_loop.h) without waiting: each goes out on one of the loop's own
// keep-alive connections to the server (non-blocking, watched in the loop's
// epoll; an https:// connection's TLS handshake too), and its answer is
// handed to a callback on the same thread. One per server, options and loop;
// for that loop's thread only.
class AsyncHttpClient {
 public:
  using Done = std::function<void(core::Result<HttpReply>)>;

  // This loop's client for the server `client` talks to, with its options;
  // made on first use, it lives as long as the loop's thread.
  // REQUIRES: EventLoop::Current() != nullptr.
  static AsyncHttpClient& ForThisLoop(const HttpClient& client);

  // Sends `request` (as HttpClient::FormatRequest makes it) and calls `done`
  // once, later, with the answer or a failure as HttpClient::Post's.
  void Send(std::string request, Done done);

  ~AsyncHttpClient();
  AsyncHttpClient(const AsyncHttpClient&) = delete;
  AsyncHttpClient& operator=(const AsyncHttpClient&) = delete;

 private:
  struct Impl;
  explicit AsyncHttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_HTTP_CLIENT_H_
