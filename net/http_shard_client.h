// HttpShardClient: a ShardClient for a shard in another process, reached over
// HTTP with keep-alive connections reused across requests. Thread-safe.
#ifndef SHARDCTL_NET_HTTP_SHARD_CLIENT_H_
#define SHARDCTL_NET_HTTP_SHARD_CLIENT_H_

#include <string>
#include <vector>

#include "core/shard_client.h"
#include "net/http_client.h"
#include "net/url.h"

namespace shardctl::net {

class HttpShardClient : public core::ShardClient {
 public:
  HttpShardClient(int shard_id, Url url, HttpClientOptions options);

  core::Result<core::IncrementReply> Increment(const core::IncrementRequest& request) override;
  core::Result<core::CountReply> Count(const core::CounterRef& counter) override;
  core::Result<std::vector<core::CounterPart>> List(const std::string& prefix) override;
  core::Result<int64_t> Reset(const std::string& name) override;
  std::string Describe() const override;
  std::string Address() const override;

 private:
  // Sends the request and parses a 200 answer with `parse`; every failure
  // (transport, non-200, unparsable) becomes a Status naming this shard.
  template <typename Parse>
  auto Call(const std::string& path, const std::string* post_body, Parse parse,
            const HttpHeaders& headers = {}) -> decltype(parse(std::string_view()));

  const int shard_id_;
  HttpClient client_;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_HTTP_SHARD_CLIENT_H_
