// FileJournal: a core::Journal in an append-only file, with group commit:
// records queued while a write is under way go out together in the next
// write (and share its fsync). How often it fsyncs is the FsyncPolicy, as
// Redis's appendfsync. Thread-safe.
#ifndef SHARDCTL_STORE_FILE_JOURNAL_H_
#define SHARDCTL_STORE_FILE_JOURNAL_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/journal.h"
#include "core/metrics.h"
#include "core/status.h"

namespace shardctl::store {

enum class FsyncPolicy {
  kAlways,       // fsync before every answer: nothing acknowledged is ever lost
  kEverySecond,  // written before every answer (survives a crash), fsync once a second
  kNo,           // written before every answer, fsync when the OS decides
};

// What the process's shard stores did, for metrics: how long journal writes
// and fsyncs took (every journal of the process together) and how many
// compactions each shard made. Thread-safe.
struct StoreMetrics {
  core::Histogram journal_write{core::DiskBuckets()};
  core::Histogram journal_fsync{core::DiskBuckets()};
  void Compacted(int shard);
  std::map<int, uint64_t> Compactions() const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> compactions_;  // shard -> compactions
};
StoreMetrics& ProcessStoreMetrics();

// Parses "always", "everysec" or "no"; kInvalidArgument otherwise.
core::Result<FsyncPolicy> ParseFsyncPolicy(std::string_view text);

// The journal file's first bytes: a magic number and the format version.
// Version 2 records may carry idempotency keys (core/record.h); version 1
// files are still read, never appended to.
inline constexpr std::string_view kJournalHeader{"SHCJ\x02\0\0\0", 8};
inline constexpr std::string_view kJournalHeaderV1{"SHCJ\x01\0\0\0", 8};

class FileJournal : public core::Journal {
 public:
  // Opens the journal at `path` for appending after its first `valid_bytes`
  // (a torn tail beyond them is cut off), or creates it with its header when
  // `valid_bytes` is 0. Returns the journal or the I/O failure.
  static core::Result<std::unique_ptr<FileJournal>> Open(const std::string& path,
                                                         size_t valid_bytes, FsyncPolicy policy);
  ~FileJournal() override;  // Writes what is queued and syncs.

  std::shared_ptr<Ticket> Append(const core::Record& record) override;
  core::Status Wait(const std::shared_ptr<Ticket>& ticket) override;
  bool syncs_each_write() const override { return policy_ == FsyncPolicy::kAlways; }
  uint64_t failed_records() const override {
    return failed_records_.load(std::memory_order_acquire);
  }

  // Makes everything written so far durable (for kEverySecond, once a second).
  core::Status Sync();

  // Writes what is queued to the current file, syncs and closes it, then
  // continues in a new file at `new_path`. REQUIRES: no Append runs
  // concurrently (the caller holds every lock under which Append is called).
  core::Status Rotate(const std::string& new_path);

  // The size of the current file in bytes.
  size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  FsyncPolicy policy() const { return policy_; }

 private:
  struct Batch;
  FileJournal(int fd, std::string path, size_t bytes, FsyncPolicy policy);
  // Writes `batch` (the caller is the leader), rolling the file back on failure.
  core::Status WriteBatch(const std::string& bytes);
  // Becomes the leader and writes the open batch, if it holds anything.
  // REQUIRES: `lock` holds mutex_; no leader is active.
  void Flush(std::unique_lock<std::mutex>& lock);

  int fd_;
  std::string path_;
  std::atomic<size_t> bytes_;
  const FsyncPolicy policy_;

  std::mutex mutex_;
  std::condition_variable written_;
  std::shared_ptr<Batch> open_;  // records queued for the next write
  bool leader_active_ = false;   // a thread is writing a batch
  core::Status broken_;          // set when the file could not be rolled back
  std::atomic<uint64_t> failed_records_{0};
  std::mutex sync_mutex_;  // keeps Sync and Rotate apart
};

}  // namespace shardctl::store

#endif  // SHARDCTL_STORE_FILE_JOURNAL_H_
