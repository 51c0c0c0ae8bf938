// HttpShardClient: a ShardClient for a shard in another process, reached over
// HTTP with keep-alive connections reused across requests. Thread-safe.
#ifndef SHARDCTL_NET_HTTP_SHARD_CLIENT_H_
#define SHARDCTL_NET_HTTP_SHARD_CLIENT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/shard_client.h"
#include "net/http_client.h"
#include "net/url.h"

namespace shardctl::net {

// The header in which a request to a cluster node names the epoch it was
// routed by (core/topology.h).
inline constexpr std::string_view kEpochHeader = "Shardctl-Epoch";

class HttpShardClient : public core::ShardClient {
 public:
  // A shard served alone by a `serve --role shard` process at `url`; or,
  // with `epoch`, shard `shard_id` of the cluster node at `url`, reached
  // under /shards/<id>/ with every request naming that epoch.
  HttpShardClient(int shard_id, Url url, HttpClientOptions options,
                  std::optional<int64_t> epoch = std::nullopt);

  core::Result<core::IncrementReply> Increment(const core::IncrementRequest& request) override;
  // On an event loop's thread, over that loop's own connections
  // (AsyncHttpClient); elsewhere as ShardClient's.
  // REQUIRES: this outlives the call's `done`.
  void IncrementAsync(const core::IncrementRequest& request, IncrementDone done,
                      const RunBlocking& blocking) override;
  core::Result<core::CountReply> Count(const core::CounterRef& counter) override;
  core::Result<std::vector<core::CounterPart>> List(const std::string& prefix) override;
  core::Result<std::vector<core::CounterPart>> ListPage(const core::PageQuery& query) override;
  core::Result<std::vector<core::CounterPart>> Rank(const core::RankQuery& query) override;
  core::Result<std::vector<int64_t>> Counts(const std::vector<std::string>& names) override;
  core::Result<int64_t> Reset(const std::string& name) override;
  // POST /increment-many with the share as `COUNTER VALUE` lines (text/plain).
  core::Result<core::ManyReply> IncrementMany(const core::ManyRequest& request) override;
  std::string Describe() const override;
  std::string Address() const override;

 private:
  // Sends the request and parses a 200 answer with `parse`; every failure
  // (transport, non-200, unparsable) becomes a Status naming this shard.
  template <typename Parse>
  auto Call(const std::string& path, const std::string* post_body, Parse parse,
            HttpHeaders headers = {}) -> decltype(parse(std::string_view()));
  // What Call makes of `reply`.
  template <typename Parse>
  auto Interpret(core::Result<HttpReply> reply, Parse parse) const
      -> decltype(parse(std::string_view()));
  std::string IncrementPath() const { return path_prefix_ + "/increment"; }
  HttpHeaders IncrementHeaders(const core::IncrementRequest& request) const;

  const int shard_id_;
  const std::string path_prefix_;  // "/shards/<id>" on a cluster node, else ""
  HttpHeaders headers_;            // the epoch header on a cluster node
  HttpClient client_;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_HTTP_SHARD_CLIENT_H_
