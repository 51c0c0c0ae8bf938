#include "net/http_client.h"

#include <mutex>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>

namespace shardctl::net {
namespace {

using Clock = std::chrono::steady_clock;

// An idle connection older than this is closed rather than reused: servers
// close idle keep-alive connections (shardctl after one second), and a request
// sent on a connection the server is closing fails with an unknown outcome.
constexpr auto kMaxIdle = std::chrono::milliseconds(500);
constexpr size_t kMaxIdleConnections = 256;

// The one place where httplib's transport errors become shardctl's.
core::Status TranslateError(httplib::Error error, const Url& url,
                            const HttpClientOptions& options) {
  switch (error) {
    case httplib::Error::Connection:
    case httplib::Error::BindIPAddress:
      return core::Unavailable(fmt::format(
          "cannot connect to {} (connection refused or host unreachable)", url.ToString()));
    case httplib::Error::ConnectionTimeout:
      return core::Unavailable(fmt::format("cannot connect to {} (no answer within {} ms)",
                                           url.ToString(), options.connect_timeout.count()));
    case httplib::Error::Read:
      return {core::Code::kTimeout,
              fmt::format("no complete answer from {} within {} ms (timed out or the "
                          "connection was lost; the request may or may not have been applied)",
                          url.ToString(), options.request_timeout.count())};
    case httplib::Error::Write:
      return core::Unavailable(
          fmt::format("lost the connection to {} while sending the request", url.ToString()));
    default:
      return core::Unavailable(
          fmt::format("request to {} failed: {}", url.ToString(), httplib::to_string(error)));
  }
}

}  // namespace

struct HttpClient::Pool {
  struct Idle {
    std::unique_ptr<httplib::Client> client;
    Clock::time_point since;
  };
  std::mutex mutex;
  std::vector<Idle> idle;  // most recently used last
};

HttpClient::HttpClient(Url url, HttpClientOptions options)
    : url_(std::move(url)), options_(options), pool_(std::make_unique<Pool>()) {}

HttpClient::~HttpClient() = default;

core::Result<HttpReply> HttpClient::Get(const std::string& path) {
  return Send(false, path, {}, {});
}

core::Result<HttpReply> HttpClient::Post(const std::string& path, const std::string& json_body,
                                         const HttpHeaders& headers) {
  return Send(true, path, json_body, headers);
}

core::Result<HttpReply> HttpClient::Send(bool post, const std::string& path,
                                         const std::string& body, const HttpHeaders& headers) {
  std::unique_ptr<httplib::Client> client;
  {
    std::lock_guard lock(pool_->mutex);
    auto now = Clock::now();
    while (!pool_->idle.empty()) {
      Pool::Idle entry = std::move(pool_->idle.back());
      pool_->idle.pop_back();
      if (now - entry.since < kMaxIdle) {
        client = std::move(entry.client);
        break;
      }
      pool_->idle.clear();  // the rest are older still
    }
  }
  if (!client) {
    client = std::make_unique<httplib::Client>(url_.host, url_.port);
    client->set_tcp_nodelay(true);
    client->set_keep_alive(true);
    client->set_connection_timeout(options_.connect_timeout);
    client->set_read_timeout(options_.request_timeout);
    client->set_write_timeout(options_.request_timeout);
    if (!options_.bearer_token.empty()) client->set_bearer_token_auth(options_.bearer_token);
  }

  httplib::Headers extra(headers.begin(), headers.end());
  httplib::Result result =
      post ? client->Post(path, extra, body, "application/json") : client->Get(path, extra);
  if (!result) return TranslateError(result.error(), url_, options_);
  HttpReply reply{result->status, std::move(result->body)};
  {
    std::lock_guard lock(pool_->mutex);
    if (pool_->idle.size() < kMaxIdleConnections) {
      pool_->idle.push_back({std::move(client), Clock::now()});
    }
  }
  return reply;
}

}  // namespace shardctl::net
