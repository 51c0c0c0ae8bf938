#include "core/cluster_shard_client.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

namespace shardctl::core {

ClusterShardClient::ClusterShardClient(int shard, TopologyView& view, Connect connect,
                                       std::chrono::milliseconds hand_over)
    : shard_(shard), view_(view), connect_(std::move(connect)), hand_over_(hand_over) {}

Result<std::shared_ptr<ClusterShardClient::Route>> ClusterShardClient::CurrentRoute(
    int64_t* revision) {
  std::shared_ptr<const Topology> topology = view_.Get();
  if (!topology) {
    if (std::string resharded = view_.resharded(); !resharded.empty()) {
      return Unavailable(fmt::format("shard {}: {}", shard_, resharded));
    }
    return Unavailable(fmt::format("shard {}: the cluster's topology has not been read yet ({})",
                                   shard_, view_.store_error()));
  }
  *revision = topology->revision;
  if (shard_ >= static_cast<int>(topology->shard.size())) {
    return Unavailable(fmt::format("shard {} is not in the cluster", shard_));
  }
  const ShardPlacement& placement = topology->shard[shard_];
  if (placement.owner.empty()) {
    return Unavailable(fmt::format(
        "shard {} has no node yet: start one with shardctl serve --etcd URL", shard_));
  }
  const NodeInfo* node = topology->FindNode(placement.owner);
  if (node == nullptr) {
    return Unavailable(
        fmt::format("shard {}: its node {} is not alive", shard_, placement.owner));
  }
  std::lock_guard lock(mutex_);
  if (!route_ || route_->address != node->address || route_->epoch != placement.epoch) {
    auto route = std::make_shared<Route>();
    route->owner = node->id;
    route->address = node->address;
    route->epoch = placement.epoch;
    route->client = connect_(shard_, node->address, placement.epoch);
    route_ = std::move(route);
  }
  return route_;
}

template <typename T, typename Call>
Result<T> ClusterShardClient::Routed(const Call& call) {
  const auto deadline = std::chrono::steady_clock::now() + hand_over_;
  auto pause = std::chrono::milliseconds(2);
  for (;;) {
    int64_t revision = 0;
    Result<std::shared_ptr<Route>> route = CurrentRoute(&revision);
    Result<T> result = route.ok() ? call(*(*route)->client) : Result<T>(route.status());
    const bool moved = !result.ok() && result.status().code() == Code::kMoved;
    if (!moved) return result;
    // The node does not serve the shard at the epoch routed by: the topology
    // changed, or a move is handing the shard over. Read it again; wait a
    // little if it did not change yet.
    if (std::chrono::steady_clock::now() >= deadline) {
      return Unavailable(fmt::format("shard {} is being moved and was not handed over within {} "
                                     "ms; try again ({})",
                                     shard_, hand_over_.count(), result.status().message()));
    }
    view_.Refresh(revision);
    std::shared_ptr<const Topology> now = view_.Get();
    if (now && now->revision == revision) {
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
  }
}

Result<IncrementReply> ClusterShardClient::Increment(const IncrementRequest& request) {
  return Routed<IncrementReply>([&](ShardClient& client) { return client.Increment(request); });
}

void ClusterShardClient::IncrementAsync(const IncrementRequest& request, IncrementDone done,
                                        const RunBlocking& blocking) {
  int64_t revision = 0;
  Result<std::shared_ptr<Route>> route = CurrentRoute(&revision);
  if (!route.ok()) {
    done(route.status());
    return;
  }
  ShardClient& client = *(*route)->client;
  // The route (and its client) lives until the answer is in.
  client.IncrementAsync(
      request,
      [this, request, done = std::move(done), blocking, route = *route](
          Result<IncrementReply> reply) mutable {
        if (reply.ok() || reply.status().code() != Code::kMoved) {
          done(std::move(reply));
          return;
        }
        // Not applied: the node refused the epoch. Find the new owner.
        blocking([this, request = std::move(request), done = std::move(done)] {
          done(Increment(request));
        });
      },
      blocking);
}

Result<CountReply> ClusterShardClient::Count(const CounterRef& counter) {
  return Routed<CountReply>([&](ShardClient& client) { return client.Count(counter); });
}

Result<std::vector<CounterPart>> ClusterShardClient::List(const std::string& prefix) {
  return Routed<std::vector<CounterPart>>(
      [&](ShardClient& client) { return client.List(prefix); });
}

Result<std::vector<CounterPart>> ClusterShardClient::ListPage(const PageQuery& query) {
  return Routed<std::vector<CounterPart>>(
      [&](ShardClient& client) { return client.ListPage(query); });
}

Result<std::vector<CounterPart>> ClusterShardClient::Rank(const RankQuery& query) {
  return Routed<std::vector<CounterPart>>([&](ShardClient& client) { return client.Rank(query); });
}

Result<ManyReply> ClusterShardClient::IncrementMany(const ManyRequest& request) {
  return Routed<ManyReply>([&](ShardClient& client) { return client.IncrementMany(request); });
}

Result<std::vector<int64_t>> ClusterShardClient::Counts(const std::vector<std::string>& names) {
  return Routed<std::vector<int64_t>>([&](ShardClient& client) { return client.Counts(names); });
}

Result<int64_t> ClusterShardClient::Reset(const std::string& name) {
  return Routed<int64_t>([&](ShardClient& client) { return client.Reset(name); });
}

std::string ClusterShardClient::Describe() const {
  std::lock_guard lock(mutex_);
  return route_ ? fmt::format("shard {} on node {} at {} (epoch {})", shard_, route_->owner,
                              route_->address, route_->epoch)
                : fmt::format("shard {}", shard_);
}

std::string ClusterShardClient::Address() const {
  std::lock_guard lock(mutex_);
  return route_ ? route_->address : "";
}

}  // namespace shardctl::core
