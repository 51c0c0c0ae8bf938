// ClusterShardClient: the aggregator's ShardClient for one shard of a
// cluster. Each call goes to the node that owns the shard in the latest
// topology, naming the epoch it routed by; a node that does not serve the
// shard at that epoch answers kMoved, and the call reads the topology again
// and tries again (with the same request, so the same Idempotency-Key: a
// retry that crosses a move reaches the keys that moved with the shard).
// While a move hands the shard over, calls wait for it, up to `hand_over`.
// Thread-safe.
#ifndef SHARDCTL_CORE_CLUSTER_SHARD_CLIENT_H_
#define SHARDCTL_CORE_CLUSTER_SHARD_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/shard_client.h"
#include "core/topology_view.h"

namespace shardctl::core {

class ClusterShardClient : public ShardClient {
 public:
  // Makes the client that reaches shard `shard` on the node at `address`,
  // naming `epoch` in every request.
  using Connect = std::function<std::unique_ptr<ShardClient>(int shard, const std::string& address,
                                                             int64_t epoch)>;

  // REQUIRES: `view` outlives this.
  ClusterShardClient(int shard, TopologyView& view, Connect connect,
                     std::chrono::milliseconds hand_over = std::chrono::milliseconds(3000));

  Result<IncrementReply> Increment(const IncrementRequest& request) override;
  // Sent without waiting to the owner the topology names; only when that
  // node refuses it (a move is under way) does it go the way of Increment,
  // waiting for the hand-over, as a task of `blocking`.
  // REQUIRES: this outlives the call's `done`.
  void IncrementAsync(const IncrementRequest& request, IncrementDone done,
                      const RunBlocking& blocking) override;
  Result<ManyReply> IncrementMany(const ManyRequest& request) override;
  Result<CountReply> Count(const CounterRef& counter) override;
  Result<std::vector<CounterPart>> List(const std::string& prefix) override;
  Result<std::vector<CounterPart>> ListPage(const PageQuery& query) override;
  Result<std::vector<CounterPart>> Rank(const RankQuery& query) override;
  Result<std::vector<int64_t>> Counts(const std::vector<std::string>& names) override;
  Result<int64_t> Reset(const std::string& name) override;
  std::string Describe() const override;
  std::string Address() const override;

 private:
  struct Route {
    std::string owner;
    std::string address;
    int64_t epoch = 0;
    std::shared_ptr<ShardClient> client;
  };
  // The route the latest topology gives, or kUnavailable saying why none.
  Result<std::shared_ptr<Route>> CurrentRoute(int64_t* revision);
  template <typename T, typename Call>
  Result<T> Routed(const Call& call);

  const int shard_;
  TopologyView& view_;
  const Connect connect_;
  const std::chrono::milliseconds hand_over_;
  mutable std::mutex mutex_;
  std::shared_ptr<Route> route_;  // the last one used
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_CLUSTER_SHARD_CLIENT_H_
