// The HTTP face of one shard: POST /increment, GET /count, GET /healthz.
#ifndef SHARDCTL_NET_SHARD_SERVER_H_
#define SHARDCTL_NET_SHARD_SERVER_H_

#include "core/shard.h"
#include "net/http_server.h"

namespace shardctl::net {

// Routes the shard's API on `server` to `shard`.
// REQUIRES: `shard` outlives `server`; called before server.Listen().
void RegisterShardRoutes(core::Shard& shard, HttpServer& server);

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_SHARD_SERVER_H_
