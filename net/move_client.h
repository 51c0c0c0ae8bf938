// HttpMoveSteps: core::MoveSteps over HTTP, as `shardctl cluster move` runs
// them: each step is one request to a node (net/node_server.h), which pulls
// from the other node itself. Thread-safe.
#ifndef SHARDCTL_NET_MOVE_CLIENT_H_
#define SHARDCTL_NET_MOVE_CLIENT_H_

#include "core/shard_move.h"
#include "net/http_client.h"

namespace shardctl::net {

class HttpMoveSteps : public core::MoveSteps {
 public:
  // `options` for every request; a copy can take long, so the request
  // timeout should allow for the largest shard.
  explicit HttpMoveSteps(HttpClientOptions options) : options_(std::move(options)) {}

  core::Status Fetch(const core::NodeInfo& to, int shard, const core::NodeInfo& from,
                     int64_t epoch) override;
  core::Status CatchUp(const core::NodeInfo& to, int shard, const core::NodeInfo& from,
                       int64_t epoch) override;
  core::Status Reconcile(const core::NodeInfo& node, int shard) override;

 private:
  core::Status Post(const core::NodeInfo& node, const std::string& path, const std::string& body);
  HttpClientOptions options_;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_MOVE_CLIENT_H_
