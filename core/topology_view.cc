#include "core/topology_view.h"

#include <thread>

#include <fmt/format.h>

#include "core/topology_store.h"

namespace shardctl::core {

std::shared_ptr<const Topology> TopologyView::Get() const {
  std::lock_guard lock(mutex_);
  return current_;
}

std::string TopologyView::store_error() const {
  std::lock_guard lock(mutex_);
  return resharded_.empty() ? store_error_ : resharded_;
}

void TopologyView::PinShardCount(int shards) {
  std::lock_guard lock(mutex_);
  pinned_shards_ = shards;
}

std::string TopologyView::resharded() const {
  std::lock_guard lock(mutex_);
  return resharded_;
}

bool TopologyView::Install(Topology topology) {
  std::lock_guard lock(mutex_);
  store_error_.clear();
  if (!resharded_.empty()) return false;
  if (pinned_shards_ > 0 && topology.shards != pinned_shards_) {
    resharded_ = fmt::format(
        "the cluster was resharded from {} to {} shards while this process ran; it routes by "
        "{} and serves nothing more: restart it",
        pinned_shards_, topology.shards, pinned_shards_);
    current_.reset();
    return false;
  }
  if (current_ && current_->revision >= topology.revision) return false;
  current_ = std::make_shared<const Topology>(std::move(topology));
  return true;
}

Status TopologyView::Refresh(int64_t seen_revision) {
  std::lock_guard refreshing(refresh_mutex_);
  if (std::shared_ptr<const Topology> now = Get(); now && now->revision > seen_revision) {
    return {};  // someone read a newer one meanwhile
  }
  Result<Topology> read = ReadTopology(store_);
  if (!read.ok()) {
    std::lock_guard lock(mutex_);
    store_error_ = read.status().message();
    return read.status();
  }
  Install(std::move(*read));
  return {};
}

void TopologyView::Follow(const std::atomic<bool>& stop,
                          const std::function<void(const Topology&)>& changed,
                          std::chrono::milliseconds retry) {
  auto failed = [this](const Status& status) {
    std::lock_guard lock(mutex_);
    store_error_ = status.message();
  };
  while (!stop.load()) {
    Result<KeyRange> range = store_.List(std::string(kTopologyPrefix));
    Result<Topology> topology = range.ok() ? ParseTopology(*range) : Result<Topology>(range.status());
    if (!topology.ok()) {
      failed(topology.status());
      std::this_thread::sleep_for(retry);
      continue;
    }
    const int64_t revision = topology->revision;
    {
      std::lock_guard refreshing(refresh_mutex_);
      Install(std::move(*topology));
    }
    std::shared_ptr<const Topology> now = Get();
    if (!now) return;  // resharded: nothing more to follow
    changed(*now);
    Result<std::unique_ptr<Watch>> watch =
        store_.WatchPrefix(std::string(kTopologyPrefix), revision + 1);
    if (!watch.ok()) {
      failed(watch.status());
      std::this_thread::sleep_for(retry);
      continue;
    }
    // Any change means reading the whole topology again: it is small, and a
    // read at one revision is consistent where a sum of events might not be.
    for (;;) {
      if (stop.load()) return;
      Result<std::vector<WatchEvent>> events = (*watch)->Next(retry);
      if (!events.ok()) {
        failed(events.status());
        break;
      }
      if (!events->empty()) break;
    }
  }
}

}  // namespace shardctl::core
