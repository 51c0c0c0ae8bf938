// TopologyView: the latest topology a process knows, shared by its threads,
// and how it stays current: Follow() reads the store and then watches it,
// and Refresh() reads it again at once (after a node answered kMoved). When
// the store cannot be reached, the last topology read stays in use: reads
// and writes go on; only changes of the topology wait. Thread-safe.
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

  // Whether the last attempt to read or watch the store failed, and how.
  std::string store_error() const;

 private:
  // Installs `topology` if newer; returns true if it was.
  bool Install(Topology topology);

  CoordStore& store_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Topology> current_;
  std::string store_error_;
  std::mutex refresh_mutex_;  // one read at a time
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_TOPOLOGY_VIEW_H_
