// NodeCountClient: asks a cluster node for its part of a counter on several
// shards at once (GET /count with "Shardctl-Epoch: 0=3,4=2"), the way a
// cluster aggregator's totals ask each node once (core/cluster_counter.h).
// Keeps one keep-alive client per node. Thread-safe.
#ifndef SHARDCTL_NET_NODE_COUNT_CLIENT_H_
#define SHARDCTL_NET_NODE_COUNT_CLIENT_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/cluster_counter.h"
#include "net/http_client.h"

namespace shardctl::net {

class NodeCountClient {
 public:
  explicit NodeCountClient(HttpClientOptions options) : options_(std::move(options)) {}

  // As core::ClusterCounter::NodeCount.
  core::Result<std::vector<core::Result<core::CountReply>>> Count(
      const std::string& address, const std::vector<core::ShardAtEpoch>& shards,
      const core::CounterRef& counter);

 private:
  HttpClient* ClientFor(const std::string& address);

  HttpClientOptions options_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<HttpClient>> clients_;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_NODE_COUNT_CLIENT_H_
