#include "net/http_shard_client.h"

#include <fmt/format.h>

#include "core/idempotency_key.h"
#include "core/protocol.h"
#include "net/event_loop.h"

namespace shardctl::net {
namespace {

// The kind of failure a shard's HTTP status stands for.
core::Code CodeForShardStatus(int status) {
  switch (status) {
    case 400: return core::Code::kInvalidArgument;
    case 409: return core::Code::kInProgress;
    case 421: return core::Code::kMoved;
    case 422: return core::Code::kOutOfRange;  // or kKeyReused: the message tells which
    case 503: return core::Code::kUnavailable;
    case 504: return core::Code::kTimeout;
    default: return core::Code::kBadGateway;  // 404, 405, 500: not a working shard
  }
}

}  // namespace

HttpShardClient::HttpShardClient(int shard_id, Url url, HttpClientOptions options,
                                 std::optional<int64_t> epoch)
    : shard_id_(shard_id),
      path_prefix_(epoch ? fmt::format("/shards/{}", shard_id) : ""),
      client_(std::move(url), options) {
  if (epoch) headers_.emplace_back(kEpochHeader, std::to_string(*epoch));
}

std::string HttpShardClient::Describe() const {
  return fmt::format("shard {} at {}", shard_id_, client_.url().ToString());
}

std::string HttpShardClient::Address() const { return client_.url().ToString(); }

template <typename Parse>
auto HttpShardClient::Call(const std::string& path, const std::string* post_body, Parse parse,
                           HttpHeaders headers) -> decltype(parse(std::string_view())) {
  headers.insert(headers.end(), headers_.begin(), headers_.end());
  return Interpret(post_body != nullptr ? client_.Post(path_prefix_ + path, *post_body, headers)
                                        : client_.Get(path_prefix_ + path, headers),
                   parse);
}

template <typename Parse>
auto HttpShardClient::Interpret(core::Result<HttpReply> reply, Parse parse) const
    -> decltype(parse(std::string_view())) {
  if (!reply.ok()) {
    return core::Status(reply.status().code(),
                        fmt::format("shard {}: {}", shard_id_, reply.status().message()));
  }
  if (reply->status != 200) {
    return core::Status(CodeForShardStatus(reply->status),
                        fmt::format("{} answered {}: {}", Describe(), reply->status,
                                    core::ParseErrorMessage(reply->body)));
  }
  auto parsed = parse(reply->body);
  if (!parsed.ok()) {
    return core::Status(core::Code::kBadGateway,
                        fmt::format("{}: {}", Describe(), parsed.status().message()));
  }
  return parsed;
}

HttpHeaders HttpShardClient::IncrementHeaders(const core::IncrementRequest& request) const {
  HttpHeaders headers;
  if (!request.idempotency_key.empty()) {
    headers.emplace_back(core::kIdempotencyKeyHeader,
                         core::FormatIdempotencyKeyHeader(request.idempotency_key));
  }
  return headers;
}

core::Result<core::IncrementReply> HttpShardClient::Increment(
    const core::IncrementRequest& request) {
  std::string body = core::FormatIncrementRequest(request);
  return Call("/increment", &body, core::ParseIncrementReply, IncrementHeaders(request));
}

void HttpShardClient::IncrementAsync(const core::IncrementRequest& request, IncrementDone done,
                                     const RunBlocking& blocking) {
  if (EventLoop::Current() == nullptr) {
    ShardClient::IncrementAsync(request, std::move(done), blocking);
    return;
  }
  HttpHeaders headers = IncrementHeaders(request);
  headers.insert(headers.end(), headers_.begin(), headers_.end());
  AsyncHttpClient::ForThisLoop(client_).Send(
      client_.FormatRequest(true, IncrementPath(), core::FormatIncrementRequest(request), headers),
      [this, done = std::move(done)](core::Result<HttpReply> reply) {
        done(Interpret(std::move(reply), core::ParseIncrementReply));
      });
}

core::Result<core::ManyReply> HttpShardClient::IncrementMany(const core::ManyRequest& request) {
  std::string body;
  core::FormatManyLines(request, &body);
  HttpHeaders headers = {{"Content-Type", "text/plain"}};
  if (!request.idempotency_key.empty()) {
    headers.emplace_back(core::kIdempotencyKeyHeader,
                         core::FormatIdempotencyKeyHeader(request.idempotency_key));
  }
  const std::string query =
      request.window > 0 ? fmt::format("?window={}", request.window) : std::string();
  return Call("/increment-many" + query, &body, core::ParseManyShareReply, std::move(headers));
}

core::Result<core::CountReply> HttpShardClient::Count(const core::CounterRef& counter) {
  return Call("/count" + core::CounterQueryString(counter), nullptr, core::ParseCountReply);
}

core::Result<std::vector<core::CounterPart>> HttpShardClient::List(const std::string& prefix) {
  return Call("/counters?prefix=" + prefix, nullptr, core::ParseCounterParts);
}

// A shard of an older version ignores the page's parameters and answers its
// whole listing: selecting from the answer gives the page either way.
core::Result<std::vector<core::CounterPart>> HttpShardClient::ListPage(
    const core::PageQuery& query) {
  auto parts = Call("/counters" + core::PageQueryString(query), nullptr, core::ParseCounterParts);
  if (!parts.ok()) return parts.status();
  return core::SelectPage(std::move(parts).value(), query);
}

core::Result<std::vector<core::CounterPart>> HttpShardClient::Rank(const core::RankQuery& query) {
  auto parts = Call("/counters" + core::RankQueryString(query), nullptr, core::ParseCounterParts);
  if (!parts.ok()) return parts.status();
  return core::SelectRank(std::move(parts).value(), query);
}

core::Result<std::vector<int64_t>> HttpShardClient::Counts(const std::vector<std::string>& names) {
  // In requests that stay well inside a server's 64 KiB body limit.
  constexpr size_t kMaxRequestBytes = 48 * 1024;
  std::vector<int64_t> counts;
  counts.reserve(names.size());
  for (size_t next = 0; next < names.size();) {
    std::vector<std::string> group;
    size_t bytes = 0;
    while (next < names.size() && group.size() < core::kMaxCountsNames &&
           (group.empty() || bytes + names[next].size() + 3 <= kMaxRequestBytes)) {
      bytes += names[next].size() + 3;
      group.push_back(names[next++]);
    }
    std::string body = core::FormatCountsRequest(group);
    core::Result<std::vector<int64_t>> part = Call("/counts", &body, core::ParseCountsReply);
    if (!part.ok()) return part.status();
    if (part->size() != group.size()) {
      return core::Status(core::Code::kBadGateway,
                          fmt::format("{} answered {} counts for {} counters", Describe(),
                                      part->size(), group.size()));
    }
    counts.insert(counts.end(), part->begin(), part->end());
  }
  return counts;
}

core::Result<int64_t> HttpShardClient::Reset(const std::string& name) {
  std::string body = core::FormatResetRequest(name);
  return Call("/reset", &body, core::ParseResetReply);
}

}  // namespace shardctl::net
