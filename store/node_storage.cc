#include "store/node_storage.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "store/shard_store.h"

namespace shardctl::store {
namespace {

namespace fs = std::filesystem;

// A follower's copy, complete as of its snapshot: the epoch it follows.
constexpr const char* kFollowingFile = "following";

int64_t KeyWindow(int64_t seconds) {
  return seconds > 0 ? seconds : core::kDefaultIdempotencyWindowSeconds;
}

class DiskShard : public core::KeptShard {
 public:
  DiskShard(std::unique_ptr<ShardStore> store, int shard, int64_t key_window, bool sync_each_second)
      : store_(std::move(store)),
        journal_(store_->journal()),
        shard_(std::make_unique<core::Shard>(shard, nullptr, &journal_, key_window)),
        sync_each_second_(sync_each_second) {}

  core::Status Replay() {
    for (const core::Record& record : store_->recovered()) {
      if (core::Status replayed = shard_->Replay(record); !replayed.ok()) {
        return core::Internal(
            fmt::format("the store in {} is corrupt: {}", store_->dir(), replayed.message()));
      }
    }
    store_->ForgetRecovered();
    return {};
  }

  core::Shard& shard() override { return *shard_; }
  core::TapJournal& journal() override { return journal_; }
  core::Status Sync() override { return store_->Sync(); }
  void Tend(std::chrono::steady_clock::time_point expiry_deadline) override {
    if (sync_each_second_) store_->Sync();
    shard_->DropExpired(expiry_deadline);
    if (store_->NeedsCompaction()) store_->Compact(*shard_);
  }
  core::Status MarkActive() override {
    for (const char* marker : {kStagedFile, kFollowingFile}) {
      std::error_code error;
      fs::remove(fs::path(store_->dir()) / marker, error);
      if (error) {
        return core::Internal(fmt::format("cannot remove {}/{}: {}", store_->dir(), marker,
                                          error.message()));
      }
    }
    return {};
  }
  core::Status MarkFollowing(int64_t epoch) override {
    // Written before the staged marker goes: a crash between leaves a copy
    // that is either staged (made again) or following, never active.
    {
      std::ofstream marker(fs::path(store_->dir()) / kFollowingFile);
      marker << epoch << "\n";
      marker.flush();
      if (!marker) {
        return core::Internal(fmt::format("cannot write {}/{}: {}", store_->dir(),
                                          kFollowingFile, std::strerror(errno)));
      }
    }
    std::error_code error;
    fs::remove(fs::path(store_->dir()) / kStagedFile, error);
    if (error) {
      return core::Internal(fmt::format("cannot remove {}/{}: {}", store_->dir(), kStagedFile,
                                        error.message()));
    }
    return {};
  }
  // Set aside at once, never deleted (a person may still want what it held),
  // so that the shard's path is free for a copy that comes back to this node
  // even while a request still holds this one. Its open files stay usable.
  void Retire() override {
    const fs::path dir = store_->dir();
    std::error_code error;
    fs::path retired = dir.parent_path() / "retired";
    fs::create_directories(retired, error);
    fs::rename(dir,
               retired / fmt::format("{}.{}", dir.filename().string(),
                                     std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count()),
               error);
  }

 private:
  std::unique_ptr<ShardStore> store_;
  core::TapJournal journal_;
  std::unique_ptr<core::Shard> shard_;
  const bool sync_each_second_;
};

class MemoryShard : public core::KeptShard {
 public:
  MemoryShard(int shard, int64_t key_window) : journal_(nullptr), shard_(shard, nullptr, &journal_, key_window) {}
  core::Shard& shard() override { return shard_; }
  core::TapJournal& journal() override { return journal_; }
  core::Status Sync() override { return {}; }
  void Tend(std::chrono::steady_clock::time_point expiry_deadline) override {
    shard_.DropExpired(expiry_deadline);
  }
  core::Status MarkActive() override { return {}; }
  core::Status MarkFollowing(int64_t) override { return {}; }
  void Retire() override {}

 private:
  core::TapJournal journal_;
  core::Shard shard_;
};

}  // namespace

NodeStorage::NodeStorage(NodeStorageOptions options) : options_(std::move(options)) {}

std::string NodeStorage::ShardDir(int shard) const {
  return (fs::path(options_.data_dir) / fmt::format("shard-{}", shard)).string();
}

core::Result<std::vector<core::ShardStorage::Found>> NodeStorage::Scan() {
  std::vector<Found> found;
  std::error_code error;
  if (!fs::exists(options_.data_dir, error)) return found;
  for (const fs::directory_entry& entry : fs::directory_iterator(options_.data_dir, error)) {
    std::string name = entry.path().filename().string();
    int shard = -1;
    if (!entry.is_directory() || !name.starts_with("shard-")) continue;
    auto [end, parsed] = std::from_chars(name.data() + 6, name.data() + name.size(), shard);
    if (parsed != std::errc() || end != name.data() + name.size()) continue;
    Found kept{.shard = shard};
    std::ifstream staged(entry.path() / kStagedFile);
    int64_t epoch = 0;
    if (staged && staged >> epoch) kept.staged_from = epoch;
    std::ifstream following(entry.path() / kFollowingFile);
    if (following && following >> epoch) {
      kept.following_at = epoch;
      kept.staged_from.reset();
    }
    found.push_back(kept);
  }
  if (error) {
    return core::Internal(fmt::format("cannot read {}: {}", options_.data_dir, error.message()));
  }
  return found;
}

core::Result<std::unique_ptr<core::KeptShard>> NodeStorage::Open(int shard) {
  core::Result<std::unique_ptr<ShardStore>> store = ShardStore::Open(
      {.data_dir = options_.data_dir, .shard_id = shard, .shard_count = options_.shard_count,
       .fsync = options_.fsync, .cluster_node = true});
  if (!store.ok()) return store.status();
  auto kept = std::make_unique<DiskShard>(std::move(*store), shard,
                                          KeyWindow(options_.key_window_seconds),
                                          options_.fsync == FsyncPolicy::kEverySecond);
  if (core::Status replayed = kept->Replay(); !replayed.ok()) return replayed;
  return std::unique_ptr<core::KeptShard>(std::move(kept));
}

core::Result<std::unique_ptr<core::KeptShard>> NodeStorage::Create(
    int shard, std::optional<int64_t> staged_from) {
  std::error_code error;
  fs::remove_all(ShardDir(shard), error);
  if (error) {
    return core::Internal(fmt::format("cannot remove {}: {}", ShardDir(shard), error.message()));
  }
  if (staged_from) {
    // The marker goes first, so that a crash while copying leaves a staged
    // (never served) directory, not an active one holding half a shard.
    fs::create_directories(ShardDir(shard), error);
    std::ofstream marker(fs::path(ShardDir(shard)) / kStagedFile);
    marker << *staged_from << "\n";
    marker.flush();
    if (error || !marker) {
      return core::Internal(fmt::format("cannot write {}/{}: {}", ShardDir(shard), kStagedFile,
                                        error ? error.message() : std::strerror(errno)));
    }
  }
  return Open(shard);
}

core::Result<std::unique_ptr<core::KeptShard>> MemoryShardStorage::Open(int shard) {
  return Create(shard, std::nullopt);
}

core::Result<std::unique_ptr<core::KeptShard>> MemoryShardStorage::Create(
    int shard, std::optional<int64_t> /*staged_from*/) {
  return std::unique_ptr<core::KeptShard>(
      std::make_unique<MemoryShard>(shard, KeyWindow(key_window_seconds_)));
}

}  // namespace shardctl::store
