// What `shardctl serve` shows at GET /metrics beside its listeners' requests
// (net/http_server.h counts those): build info, the process (CPU, memory,
// descriptors, start time), each shard it holds, its journals, and the
// shards as its aggregator sees them.
#ifndef SHARDCTL_CMD_SERVE_METRICS_H_
#define SHARDCTL_CMD_SERVE_METRICS_H_

#include <string>
#include <vector>

#include "core/aggregator.h"
#include "core/hosted_shards.h"
#include "core/metrics.h"
#include "core/shard.h"

namespace shardctl::cmd {

struct ServeMetricsSources {
  std::string role;                        // "all", "shard", "aggregator", "node"
  std::vector<const core::Shard*> shards;  // a static serve's own shards
  core::HostedShards* hosted = nullptr;    // a cluster node's
  core::Aggregator* aggregator = nullptr;
};

// Declares the families and adds their collectors to `registry`.
// REQUIRES: what `sources` points to outlives every Render() of `registry`.
void AddServeMetrics(core::Registry& registry, const ServeMetricsSources& sources);

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_SERVE_METRICS_H_
