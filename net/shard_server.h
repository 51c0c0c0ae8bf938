// The HTTP face of one shard: POST /increment, POST /increment-many (a
// share of a batch of many counters), GET /count, GET /counters (all, a page
// by name, a page by count), POST /counts, POST /reset, GET /healthz.
#ifndef SHARDCTL_NET_SHARD_SERVER_H_
#define SHARDCTL_NET_SHARD_SERVER_H_

#include <vector>

#include "core/protocol.h"
#include "core/shard.h"
#include "net/http_server.h"

namespace shardctl::net {

// A shard's GET /counters parameters (core::ParseShardListQuery).
core::Result<core::ShardListQuery> ParseShardListQuery(const HttpRequest& request);
// A POST /increment-many request: its lines (or JSON) body, ?window= and key.
core::Result<core::ManyRequest> ParseManyShare(const HttpRequest& request);
// What `query` asks of `shard`.
std::vector<core::CounterPart> ListShard(const core::Shard& shard,
                                         const core::ShardListQuery& query);

// Routes the shard's API on `server` to `shard`.
// REQUIRES: `shard` outlives `server`; called before server.Listen().
void RegisterShardRoutes(core::Shard& shard, HttpServer& server);

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_SHARD_SERVER_H_
