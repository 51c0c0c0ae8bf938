// The HTTP face of the aggregator: POST /increment, GET /total, GET /healthz.
#ifndef SHARDCTL_NET_AGGREGATOR_SERVER_H_
#define SHARDCTL_NET_AGGREGATOR_SERVER_H_

#include "core/aggregator.h"
#include "net/http_server.h"

namespace shardctl::net {

// Routes the aggregator's API on `server` to `aggregator`.
// REQUIRES: `aggregator` outlives `server`; called before server.Listen().
void RegisterAggregatorRoutes(core::Aggregator& aggregator, HttpServer& server);

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_AGGREGATOR_SERVER_H_
