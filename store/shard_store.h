// ShardStore: one shard's data directory. It holds the directory's lock, the
// snapshot and the journal; it reads them back at start, and compacts them
// (a new snapshot, a fresh journal) so that a restart stays fast however long
// the history. Layout of DIR/shard-K/:
//   LOCK         flock'ed while a shardctl uses the shard; holds its pid
//   meta         "shardctl store 3" and "shard K of N": the format version
//                and what the directory was made for
//   snapshot     every counter (and idempotency key within its window) at the
//                start of journal generation G
//   journal-G    the changes since (older generations are deleted)
// Format 2 added idempotency keys to records. A format 1 directory is read
// as it is, then upgraded: its meta says 2 and appends go to a new journal,
// so a format 1 file never holds a format 2 record (and an older shardctl
// refuses the directory instead of misreading it). Format 3 added the record
// kind kAnyValueKey (core/record.h), which `cluster reshard` writes; its
// records are encoded as format 2's, so a format 2 directory is read as it
// is and its meta then says 3, which a shardctl that knows only format 2
// refuses (instead of taking the new kind for corruption). Format 4 packs the
// snapshot's records (core::PackRecords: some 13 bytes a counter instead of
// 48); its journals are format 3's, and a format 2 or 3 directory is read as
// it is, its meta then says 4 and its next snapshot is packed.
// Not thread-safe, except journal(), whose FileJournal is.
#ifndef SHARDCTL_STORE_SHARD_STORE_H_
#define SHARDCTL_STORE_SHARD_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/record.h"
#include "core/shard.h"
#include "core/status.h"
#include "store/file_journal.h"

namespace shardctl::store {

struct StoreOptions {
  std::string data_dir;  // the shard's files go to data_dir/shard-<id>
  int shard_id = 0;
  int shard_count = 1;
  FsyncPolicy fsync = FsyncPolicy::kEverySecond;
  // Compact once the journal is this large and larger than twice the snapshot.
  size_t compact_min_bytes = 4u << 20;
  // A cluster node's shard: a directory made for another shard count is
  // explained in the cluster's words (its count is etcd's, not --shards).
  bool cluster_node = false;
};

class ShardStore {
 public:
  // Locks and reads the shard's directory, creating it if needed. Returns the
  // store, or kInternal / kUnavailable with a message that names the
  // directory and what is wrong: in use by another process (with its pid),
  // not writable, made for another shard count, corrupt. Nothing is changed
  // on disk when it fails, except a new, empty directory.
  static core::Result<std::unique_ptr<ShardStore>> Open(const StoreOptions& options);
  ~ShardStore();

  // What the directory held: replay these into the shard, in order.
  const std::vector<core::Record>& recovered() const { return recovered_; }
  // Frees the recovered records once they have been replayed, and gives the
  // memory they held back to the system.
  void ForgetRecovered();

  core::Journal* journal() { return journal_.get(); }
  // For the kEverySecond policy: call once a second.
  core::Status Sync() { return journal_->Sync(); }

  // True when the journal has grown enough to be worth compacting.
  bool NeedsCompaction() const;
  // Writes a new snapshot of `shard` and starts a fresh journal.
  // REQUIRES: `shard` journals to journal().
  core::Status Compact(core::Shard& shard);

  const std::string& dir() const { return dir_; }

 private:
  ShardStore() = default;

  StoreOptions options_;
  std::string dir_;
  int lock_fd_ = -1;
  uint64_t generation_ = 1;          // the snapshot covers the journals before this one
  uint64_t journal_generation_ = 1;  // the journal being appended to
  size_t snapshot_bytes_ = 0;
  std::vector<core::Record> recovered_;
  std::unique_ptr<FileJournal> journal_;
};

// Checks that `data_dir` holds no shard directory beyond `shard_count`
// shards (with value mod N routing, dropping a shard would silently drop its
// counts from every total). Returns kInvalidArgument naming what was found.
core::Status CheckNoExtraShards(const std::string& data_dir, int shard_count);

// Writes `data` to `path` atomically: a temporary file (path + ".tmp"),
// fsync, rename, fsync of the directory. Returns kInternal naming the file.
core::Status WriteFileAtomically(const std::string& path, std::string_view data);

// The default data directory: $XDG_STATE_HOME/shardctl, else
// $HOME/.local/state/shardctl.
std::string DefaultDataDir();

}  // namespace shardctl::store

#endif  // SHARDCTL_STORE_SHARD_STORE_H_
