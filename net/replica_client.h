// HttpReplicaSource: how a follower reaches its primary over HTTP (the
// node routes /shards/<k>/follow and /shards/<k>/replicate, net/node_server.h).
// Keeps one client, with its keep-alive connections, per primary. Thread-safe.
#ifndef SHARDCTL_NET_REPLICA_CLIENT_H_
#define SHARDCTL_NET_REPLICA_CLIENT_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/node_agent.h"
#include "net/http_client.h"

namespace shardctl::net {

// The first line of a /follow answer ("<log id> <next>") and of a
// /replicate answer ("<first>"), before the records.
std::string FormatFollowerStart(uint64_t log_id, uint64_t next);
std::string FormatBatchStart(uint64_t first);

class HttpReplicaSource : public core::ReplicaSource {
 public:
  // `options` must give fetches longer than the longest wait asked for.
  explicit HttpReplicaSource(HttpClientOptions options) : options_(std::move(options)) {}

  core::Result<core::HostedShards::FollowerStart> Start(const std::string& address, int shard,
                                                        int64_t epoch,
                                                        const std::string& me) override;
  core::Result<core::ReplicaBatch> Fetch(const std::string& address, int shard, int64_t epoch,
                                         const std::string& me, uint64_t log_id, uint64_t from,
                                         std::chrono::milliseconds wait) override;

 private:
  core::Result<std::shared_ptr<HttpClient>> ClientFor(const std::string& address);

  const HttpClientOptions options_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<HttpClient>> clients_;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_REPLICA_CLIENT_H_
