// The HTTP face of the aggregator: POST /increment, GET /total, ..., GET /healthz,
// and the dashboard page at GET /.
#ifndef SHARDCTL_NET_AGGREGATOR_SERVER_H_
#define SHARDCTL_NET_AGGREGATOR_SERVER_H_

#include "core/aggregator.h"
#include "net/http_server.h"

namespace shardctl::net {

// How the aggregator's handlers wait for its shards.
enum class AggregatorWaits {
  // On the event loop's thread: simple, and a server with many loops
  // serves others meanwhile.
  kInLoop,
  // Never on a loop: increments go out over the loops' own connections and
  // are answered when the shard answers; everything else that asks shards
  // runs on a pool of threads. For few loops (one per core) that each serve
  // many connections.
  kNever,
};

// Routes the aggregator's API on `server` to `aggregator`.
// REQUIRES: `aggregator` outlives `server`; called before server.Listen().
void RegisterAggregatorRoutes(core::Aggregator& aggregator, HttpServer& server,
                              AggregatorWaits waits = AggregatorWaits::kInLoop);

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_AGGREGATOR_SERVER_H_
