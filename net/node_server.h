// The HTTP routes of a cluster node (`serve --etcd`): each shard's API under
// /shards/<k>/ (increment, count, counters, reset), served only at the epoch
// named by the Shardctl-Epoch header (421 otherwise, core/hosted_shards.h);
// the steps of a move (snapshot and seal on the node the shard leaves; fetch
// and catch-up on the node it goes to, which pull from the other); reconcile
// (read the shard's placement from the topology now); replication (follow:
// a follower's start from a snapshot; replicate: a follower's fetch, a long
// poll; promote: make this node the primary, as `cluster promote`); and
// GET /node.
#ifndef SHARDCTL_NET_NODE_SERVER_H_
#define SHARDCTL_NET_NODE_SERVER_H_

#include <functional>
#include <string>

#include "core/hosted_shards.h"
#include "core/status.h"
#include "net/http_client.h"
#include "net/http_server.h"

namespace shardctl::net {

struct NodeRoutesOptions {
  int shard_count = 1;
  // Reads the shard's placement from the topology and applies it.
  std::function<core::Status(int shard)> reconcile;
  // How this node reaches another during a move (timeouts, token).
  HttpClientOptions peer;
  // A cluster with replication: increments and resets wait for followers,
  // so they run on the server's blocking threads.
  bool replicated = false;
  // Makes this node the primary of the shard (NodeAgent::Promote).
  std::function<core::Result<int64_t>(int shard)> promote = nullptr;
};

// REQUIRES: `shards` outlives the server.
void RegisterNodeRoutes(core::HostedShards& shards, NodeRoutesOptions options,
                        HttpServer& server);

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_NODE_SERVER_H_
