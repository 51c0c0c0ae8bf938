// NodeStorage: where a cluster node keeps its shards on disk, one ShardStore
// each under DATA_DIR/shard-K (store/shard_store.h). A copy a move has not
// handed over yet carries a file `staged` holding the epoch it was copied
// at; a shard the node gave away is moved to DATA_DIR/retired/, never
// deleted. Thread-safe (each KeptShard is used under HostedShards' locks).
#ifndef SHARDCTL_STORE_NODE_STORAGE_H_
#define SHARDCTL_STORE_NODE_STORAGE_H_

#include <cstdint>
#include <string>

#include "core/hosted_shards.h"
#include "store/file_journal.h"

namespace shardctl::store {

// The file that marks a shard directory as a move's copy not handed over
// yet (reshard skips such copies too: store/reshard_storage.h).
inline constexpr const char* kStagedFile = "staged";

struct NodeStorageOptions {
  std::string data_dir;
  int shard_count = 1;
  FsyncPolicy fsync = FsyncPolicy::kEverySecond;
  int64_t key_window_seconds = 0;  // 0: core's default
};

class NodeStorage : public core::ShardStorage {
 public:
  explicit NodeStorage(NodeStorageOptions options);

  core::Result<std::vector<Found>> Scan() override;
  core::Result<std::unique_ptr<core::KeptShard>> Open(int shard) override;
  core::Result<std::unique_ptr<core::KeptShard>> Create(
      int shard, std::optional<int64_t> staged_from) override;
  bool durable() const override { return true; }

 private:
  std::string ShardDir(int shard) const;
  NodeStorageOptions options_;
};

// Shards in memory only (serve --in-memory, and tests): nothing is found
// after a restart.
class MemoryShardStorage : public core::ShardStorage {
 public:
  explicit MemoryShardStorage(int64_t key_window_seconds = 0)
      : key_window_seconds_(key_window_seconds) {}
  core::Result<std::vector<Found>> Scan() override { return std::vector<Found>(); }
  core::Result<std::unique_ptr<core::KeptShard>> Open(int shard) override;
  core::Result<std::unique_ptr<core::KeptShard>> Create(
      int shard, std::optional<int64_t> staged_from) override;
  bool durable() const override { return false; }

 private:
  int64_t key_window_seconds_;
};

}  // namespace shardctl::store

#endif  // SHARDCTL_STORE_NODE_STORAGE_H_
