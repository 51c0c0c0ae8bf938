#include "topo/etcd_store.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include <fmt/format.h>

#include "net/request_framing.h"
#include "topo/etcd_json.h"

namespace shardctl::topo {
namespace {

using Clock = std::chrono::steady_clock;

// A watch's stream holds one JSON message a line; a line longer than this is
// not one etcd sends.
constexpr size_t kMaxLineBytes = 64 * 1024 * 1024;

// A watch: the lines of etcd's answer to /v3/watch, read as they come.
class EtcdWatch : public core::Watch {
 public:
  EtcdWatch(std::unique_ptr<net::HttpStream> stream, std::string url)
      : stream_(std::move(stream)), url_(std::move(url)) {}

  core::Result<std::vector<core::WatchEvent>> Next(std::chrono::milliseconds wait) override {
    auto deadline = Clock::now() + wait;
    for (;;) {
      core::Result<std::optional<WatchMessage>> message = NextMessage(deadline);
      if (!message.ok()) return message.status();
      if (!message->has_value()) return std::vector<core::WatchEvent>();
      if (!(*message)->events.empty()) return std::move((*message)->events);
    }
  }

  // The next message, std::nullopt if none came before `deadline`. A failure
  // ends the watch: every later call returns it again.
  core::Result<std::optional<WatchMessage>> NextMessage(Clock::time_point deadline) {
    if (!failure_.ok()) return failure_;
    for (;;) {
      if (size_t newline = buffer_.find('\n'); newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        if (line.empty()) continue;
        core::Result<WatchMessage> message = ParseWatchMessage(line);
        if (!message.ok()) return failure_ = message.status();
        return std::optional<WatchMessage>(std::move(message).value());
      }
      if (buffer_.size() > kMaxLineBytes) {
        return failure_ = core::Unavailable(fmt::format("the watch on {} sent a line of more "
                                                        "than {} bytes",
                                                        url_, kMaxLineBytes));
      }
      core::Result<std::string> data = stream_->Read(deadline);
      if (!data.ok()) {
        return failure_ = core::Unavailable(
                   fmt::format("the watch on {} ended: {}", url_, data.status().message()));
      }
      if (data->empty() && Clock::now() >= deadline) return std::optional<WatchMessage>();
      buffer_ += *data;
    }
  }

 private:
  std::unique_ptr<net::HttpStream> stream_;
  std::string url_;
  std::string buffer_;  // received, not yet split into lines
  core::Status failure_;
};

}  // namespace

EtcdStore::EtcdStore(std::vector<net::Url> endpoints, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  assert(!endpoints.empty());
  net::HttpClientOptions options;
  options.connect_timeout = timeout;
  options.request_timeout = timeout;
  for (net::Url& url : endpoints) {
    clients_.push_back(std::make_unique<net::HttpClient>(std::move(url), options));
  }
}

EtcdStore::EtcdStore(net::Url endpoint, std::chrono::milliseconds timeout)
    : EtcdStore(std::vector<net::Url>{std::move(endpoint)}, timeout) {}

EtcdStore::~EtcdStore() = default;

template <typename T>
core::Result<T> EtcdStore::OnFirstReachable(
    const std::function<core::Result<T>(net::HttpClient&)>& call) {
  size_t first = preferred_.load();
  for (size_t i = 0;; ++i) {
    size_t at = (first + i) % clients_.size();
    core::Result<T> result = call(*clients_[at]);
    bool unreachable = !result.ok() && result.status().code() == core::Code::kUnavailable;
    if (!result.ok() && result.status().code() == core::Code::kTimeout) {
      // A member that takes the connection and never answers (hung, or cut
      // off from its quorum). The call may have been applied, so it is not
      // tried again; the next call goes to the next member.
      preferred_.store((at + 1) % clients_.size());
      return result;
    }
    if (!unreachable) preferred_.store(at);
    if (!unreachable || i + 1 == clients_.size()) return result;
  }
}

core::Result<std::string> EtcdStore::Call(const std::string& path, const std::string& body) {
  core::Result<net::HttpReply> reply = OnFirstReachable<net::HttpReply>(
      [&](net::HttpClient& client) { return client.Post(path, body); });
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return ParseError(reply->status, reply->body);
  return std::move(reply->body);
}

core::Result<std::optional<core::KeyValue>> EtcdStore::Get(const std::string& key) {
  core::Result<std::string> answer = Call("/v3/kv/range", GetRequest(key));
  if (!answer.ok()) return answer.status();
  core::Result<core::KeyRange> range = ParseRange(*answer);
  if (!range.ok()) return range.status();
  if (range->kvs.empty()) return std::optional<core::KeyValue>();
  return std::optional<core::KeyValue>(std::move(range->kvs.front()));
}

core::Result<core::KeyRange> EtcdStore::List(const std::string& prefix) {
  core::Result<std::string> answer = Call("/v3/kv/range", ListRequest(prefix));
  if (!answer.ok()) return answer.status();
  return ParseRange(*answer);
}

core::Result<core::CasResult> EtcdStore::CompareAndSet(const std::string& key,
                                                       int64_t expected_revision,
                                                       const std::string& value,
                                                       core::LeaseId lease) {
  core::Result<std::string> answer =
      Call("/v3/kv/txn", CompareAndSetRequest(key, expected_revision, value, lease));
  if (!answer.ok()) return answer.status();
  return ParseTxn(*answer);
}

core::Result<core::CasResult> EtcdStore::CompareAndDelete(const std::string& key,
                                                          int64_t expected_revision) {
  core::Result<std::string> answer =
      Call("/v3/kv/txn", CompareAndDeleteRequest(key, expected_revision));
  if (!answer.ok()) return answer.status();
  return ParseTxn(*answer);
}

core::Result<bool> EtcdStore::CommitIfUnchanged(const std::string& prefix, int64_t revision,
                                                const std::vector<core::KeyWrite>& writes) {
  core::Result<std::string> answer =
      Call("/v3/kv/txn", CommitIfUnchangedRequest(prefix, revision, writes));
  if (!answer.ok()) return answer.status();
  core::Result<core::CasResult> txn = ParseTxn(*answer, /*read_on_failure=*/false);
  if (!txn.ok()) return txn.status();
  return txn->succeeded;
}

core::Result<core::LeaseId> EtcdStore::GrantLease(int64_t ttl_seconds) {
  if (ttl_seconds < 1) return core::InvalidArgument("a lease needs a TTL of at least 1 second");
  core::Result<std::string> answer = Call("/v3/lease/grant", GrantRequest(ttl_seconds));
  if (!answer.ok()) return answer.status();
  return ParseGrant(*answer);
}

core::Status EtcdStore::KeepAlive(core::LeaseId lease) {
  // A stream in gRPC; the gateway answers one request and ends the stream.
  core::Result<std::string> answer = Call("/v3/lease/keepalive", LeaseRequest(lease));
  if (!answer.ok()) return answer.status();
  return ParseKeepAlive(*answer);
}

core::Status EtcdStore::RevokeLease(core::LeaseId lease) {
  core::Result<std::string> answer = Call("/v3/lease/revoke", LeaseRequest(lease));
  return answer.ok() ? core::Status() : answer.status();
}

core::Result<std::unique_ptr<core::Watch>> EtcdStore::WatchPrefix(const std::string& prefix,
                                                                  int64_t start_revision) {
  std::string request = WatchRequest(prefix, start_revision);
  std::string url;  // of the member that answered
  core::Result<std::unique_ptr<net::HttpStream>> stream =
      OnFirstReachable<std::unique_ptr<net::HttpStream>>([&](net::HttpClient& client) {
        url = client.url().ToString();
        return client.PostStream("/v3/watch", request);
      });
  if (!stream.ok()) return stream.status();
  auto deadline = Clock::now() + timeout_;
  if ((*stream)->status() != 200) {  // an error of known length: read it whole
    std::string body;
    while (!(*stream)->ended() && Clock::now() < deadline) {
      core::Result<std::string> data = (*stream)->Read(deadline);
      if (!data.ok()) break;
      body += *data;
    }
    return ParseError((*stream)->status(), body);
  }
  auto watch = std::make_unique<EtcdWatch>(std::move(stream).value(), url);
  // The first message says the watch is in place (or why it is not).
  core::Result<std::optional<WatchMessage>> created = watch->NextMessage(deadline);
  if (!created.ok()) return created.status();
  if (!created->has_value() || !(*created)->created) {
    return core::Status(
        core::Code::kTimeout,
        fmt::format("etcd at {} did not set up the watch within {} ms", url, timeout_.count()));
  }
  return std::unique_ptr<core::Watch>(std::move(watch));
}

core::Result<std::unique_ptr<EtcdStore>> OpenEtcdStore(std::string_view endpoints,
                                                       std::chrono::milliseconds timeout) {
  std::vector<net::Url> urls;
  for (size_t start = 0; start <= endpoints.size();) {
    size_t comma = std::min(endpoints.find(',', start), endpoints.size());
    core::Result<net::Url> url =
        net::ParseUrl(net::TrimSpacesAndTabs(endpoints.substr(start, comma - start)));
    if (!url.ok()) return url.status();
    urls.push_back(std::move(url).value());
    start = comma + 1;
  }
  return std::make_unique<EtcdStore>(std::move(urls), timeout);
}

}  // namespace shardctl::topo
