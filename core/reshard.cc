#include "core/reshard.h"

#include <algorithm>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "core/counter.h"

namespace shardctl::core {

Result<ReshardPlan> PlanReshard(const Topology& topology, int to, const std::string& node) {
  if (to < 1 || to > kMaxClusterShards) {
    return InvalidArgument(
        fmt::format("a cluster has 1 to {} shards, not {}", kMaxClusterShards, to));
  }
  if (to == topology.shards) {
    return InvalidArgument(fmt::format("the cluster has {} shards already", to));
  }
  if (!topology.nodes.empty()) {
    std::string alive;
    for (const NodeInfo& one : topology.nodes) alive += (alive.empty() ? "" : ", ") + one.id;
    return InvalidArgument(fmt::format(
        "node{} {} {} alive: a reshard needs a stopped cluster (stop every node, then run this "
        "again)",
        topology.nodes.size() == 1 ? "" : "s", alive, topology.nodes.size() == 1 ? "is" : "are"));
  }
  int64_t epoch = 0;
  for (const ShardPlacement& placement : topology.shard) {
    if (!placement.moving_to.empty()) {
      return InvalidArgument(fmt::format(
          "shard {} is being moved from {} to {}: start {} so that it finishes or takes the "
          "shard back, then stop it and run this again",
          placement.shard, placement.owner, placement.moving_to, placement.owner));
    }
    epoch = std::max(epoch, placement.epoch);
  }
  return ReshardPlan{
      .from = topology.shards, .to = to, .node = node, .replicas = topology.replicas, .epoch = epoch + 1};
}

std::vector<KeyWrite> ReshardWrites(const ReshardPlan& plan) {
  std::vector<KeyWrite> writes = {{ClusterKey(), EncodeClusterSpec(plan.to, plan.replicas)}};
  for (int shard = 0; shard < plan.to; ++shard) {
    writes.push_back({ShardKey(shard), EncodePlacement({.shard = shard,
                                                        .owner = plan.node,
                                                        .epoch = plan.epoch})});
  }
  for (int shard = plan.to; shard < plan.from; ++shard) {
    writes.push_back({ShardKey(shard), std::nullopt});
  }
  return writes;
}

bool ReshardCommitted(const Topology& topology, const ReshardPlan& plan) {
  if (topology.shards != plan.to) return false;
  return std::all_of(topology.shard.begin(), topology.shard.end(),
                     [&plan](const ShardPlacement& placement) {
                       return placement.owner == plan.node && placement.epoch == plan.epoch &&
                              placement.moving_to.empty();
                     });
}

Result<std::vector<std::vector<Record>>> ReshardRecords(
    const std::vector<std::vector<Record>>& old_shards, int to) {
  // Per new shard, its counters by (name, window): the latest window start
  // seen and the sum of the parts at that start.
  using CounterKey = std::pair<std::string, int64_t>;
  struct Sum {
    int64_t window_start = 0;
    int64_t count = 0;
  };
  std::vector<std::map<CounterKey, Sum>> sums(to);
  // Every key: its record in each old shard that holds it, by old shard.
  std::map<std::string, std::map<int, const Record*>> keys;
  const int from = static_cast<int>(old_shards.size());
  for (int k = 0; k < from; ++k) {
    std::map<CounterKey, Sum>& target = sums[k % to];
    for (const Record& record : old_shards[k]) {
      if (record.kind == Record::Kind::kKey || record.kind == Record::Kind::kAnyValueKey) {
        keys[record.key].emplace(k, &record);
        continue;
      }
      auto [it, inserted] = target.try_emplace({record.name, record.window},
                                               Sum{record.window_start, record.amount});
      if (inserted) continue;
      Sum& sum = it->second;
      if (record.window_start < sum.window_start) continue;  // an ended window
      if (record.window_start > sum.window_start) {
        sum = {record.window_start, record.amount};
        continue;
      }
      Result<int64_t> added = CheckedAdd(sum.count, record.amount);
      if (!added.ok()) {
        return OutOfRange(fmt::format(
            "the parts of counter '{}'{} that go to new shard {} add up to more than a 64-bit "
            "count holds: reshard to a count that keeps them apart",
            record.name, record.window > 0 ? fmt::format(" (window {} s)", record.window) : "",
            k % to));
      }
      sum.count = *added;
    }
  }

  std::vector<std::vector<Record>> shards(to);
  for (int j = 0; j < to; ++j) {
    for (const auto& [counter, sum] : sums[j]) {
      shards[j].push_back({.kind = Record::Kind::kSet,
                           .name = counter.first,
                           .window = counter.second,
                           .window_start = sum.window_start,
                           .amount = sum.count});
    }
    for (const auto& [key, held] : keys) {
      // An old shard whose counters come here, else the lowest that held it.
      const Record* source = held.begin()->second;
      for (const auto& [k, record] : held) {
        if (k % to == j) {
          source = record;
          break;
        }
      }
      shards[j].push_back({.kind = Record::Kind::kAnyValueKey,
                           .name = source->name,
                           .window = source->window,
                           .window_start = source->window_start,
                           .amount = 0,
                           .key = key,
                           .key_time = source->key_time,
                           .count = source->count});
    }
  }
  return shards;
}

}  // namespace shardctl::core
