// TopologyView: the latest topology a process knows, shared by its threads,
// and how it stays current: Follow() reads the store and then watches it,
// and Refresh() reads it again at once (after a node answered kMoved). When
// the store cannot be reached, the last topology read stays in use: reads
// and writes go on; only changes of the topology wait. A change of the shard
// count is not followed (PinShardCount). Thread-safe.
#ifndef SHARDCTL_CORE_TOPOLOGY_VIEW_H_
#define SHARDCTL_CORE_TOPOLOGY_VIEW_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/coord_store.h"
#include "core/status.h"
#include "core/topology.h"

namespace shardctl::core {

class TopologyView {
 public:
  // REQUIRES: `store` outlives this.
  explicit TopologyView(CoordStore& store) : store_(store) {}

  // The latest topology, or null before the first successful read.
  std::shared_ptr<const Topology> Get() const;

  // Reads the store now unless a read newer than `seen_revision` already
  // happened (so that many callers that saw the same stale topology cause
  // one read). Returns the store's failure, if any.
  Status Refresh(int64_t seen_revision = 0);

  // Keeps the view current until `stop` is true: reads, watches, reads again
  // after every change or failure (waiting `retry` after a failure), and
  // calls `changed` with the view's topology after every read. Returns
  // when `stop` is set (checked at least every `retry`).
  void Follow(const std::atomic<bool>& stop, const std::function<void(const Topology&)>& changed,
              std::chrono::milliseconds retry = std::chrono::milliseconds(500));

  // Whether the last attempt to read or watch the store failed, and how (or
  // resharded()'s message).
  std::string store_error() const;

  // For a process whose shards or shard clients were made for `shards`
  // shards (a node, an aggregator): from now on a topology with another
  // shard count (after `shardctl cluster reshard`) is never installed. The
  // view drops the one it had instead, so that nothing is routed by the old
  // count: Get() returns null (callers answer kUnavailable with
  // store_error()), Follow returns, and resharded() says what to do.
  void PinShardCount(int shards);
  // "" until a topology with another count than the pinned one was read.
  std::string resharded() const;

 private:
  // Installs `topology` if newer; returns true if it was.
  bool Install(Topology topology);

  CoordStore& store_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Topology> current_;
  std::string store_error_;
  int pinned_shards_ = 0;  // 0: any count
  std::string resharded_;
  std::mutex refresh_mutex_;  // one read at a time
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_TOPOLOGY_VIEW_H_
