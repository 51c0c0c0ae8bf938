// HttpShardClient: a ShardClient for a shard in another process, reached over
// HTTP with keep-alive connections reused across requests. Thread-safe.
#ifndef SHARDCTL_NET_HTTP_SHARD_CLIENT_H_
#define SHARDCTL_NET_HTTP_SHARD_CLIENT_H_

#include <string>

#include "core/shard_client.h"
#include "net/http_client.h"
#include "net/url.h"

namespace shardctl::net {

class HttpShardClient : public core::ShardClient {
 public:
  HttpShardClient(int shard_id, Url url, HttpClientOptions options);

  core::Result<core::IncrementReply> Increment(int64_t value) override;
  core::Result<int64_t> Count() override;
  std::string Describe() const override;

 private:
  // Turns a failed or non-2xx answer into a Status that names this shard.
  core::Status Failure(const core::Result<HttpReply>& reply) const;

  const int shard_id_;
  HttpClient client_;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_HTTP_SHARD_CLIENT_H_
