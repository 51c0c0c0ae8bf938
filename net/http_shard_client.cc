#include "net/http_shard_client.h"

#include <fmt/format.h>

#include "core/protocol.h"

namespace shardctl::net {
namespace {

// The kind of failure a shard's HTTP status stands for.
core::Code CodeForShardStatus(int status) {
  switch (status) {
    case 400: return core::Code::kInvalidArgument;
    case 422: return core::Code::kOutOfRange;
    case 503: return core::Code::kUnavailable;
    case 504: return core::Code::kTimeout;
    default: return core::Code::kBadGateway;  // 404, 405, 500: not a working shard
  }
}

}  // namespace

HttpShardClient::HttpShardClient(int shard_id, Url url, HttpClientOptions options)
    : shard_id_(shard_id), client_(std::move(url), options) {}

std::string HttpShardClient::Describe() const {
  return fmt::format("shard {} at {}", shard_id_, client_.url().ToString());
}

core::Status HttpShardClient::Failure(const core::Result<HttpReply>& reply) const {
  if (!reply.ok()) {
    return {reply.status().code(),
            fmt::format("shard {}: {}", shard_id_, reply.status().message())};
  }
  return {CodeForShardStatus(reply->status),
          fmt::format("{} answered {}: {}", Describe(), reply->status,
                      core::ParseErrorMessage(reply->body))};
}

core::Result<core::IncrementReply> HttpShardClient::Increment(int64_t value) {
  core::Result<HttpReply> reply =
      client_.Post("/increment", core::FormatIncrementRequest({.value = value}));
  if (!reply.ok() || reply->status != 200) return Failure(reply);
  core::Result<core::IncrementReply> parsed = core::ParseIncrementReply(reply->body);
  if (!parsed.ok()) {
    return core::Status(core::Code::kBadGateway,
                        fmt::format("{}: {}", Describe(), parsed.status().message()));
  }
  return parsed;
}

core::Result<int64_t> HttpShardClient::Count() {
  core::Result<HttpReply> reply = client_.Get("/count");
  if (!reply.ok() || reply->status != 200) return Failure(reply);
  core::Result<int64_t> count = core::ParseCountReply(reply->body);
  if (!count.ok()) {
    return core::Status(core::Code::kBadGateway,
                        fmt::format("{}: {}", Describe(), count.status().message()));
  }
  return count;
}

}  // namespace shardctl::net
