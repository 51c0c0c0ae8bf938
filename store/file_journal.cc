#include "store/file_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

namespace shardctl::store {
namespace {

core::Status IoError(std::string_view what, const std::string& path) {
  return core::Internal(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

// Writes all of `data`, retrying short writes and interruptions.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// fsyncs the directory that holds `path`, so that a new name in it survives.
void SyncParentDirectory(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/'));
  int fd = ::open(dir.empty() ? "/" : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

struct FileJournal::Batch : core::Journal::Ticket {
  std::string bytes;
  uint64_t records = 0;
  bool done = false;
  core::Status status;
};

core::Result<FsyncPolicy> ParseFsyncPolicy(std::string_view text) {
  if (text == "always") return FsyncPolicy::kAlways;
  if (text == "everysec") return FsyncPolicy::kEverySecond;
  if (text == "no") return FsyncPolicy::kNo;
  return core::InvalidArgument(
      fmt::format("unknown fsync policy '{}'; use always, everysec or no", text));
}

// Opens the file at `path` for appending after its first `valid_bytes`, or
// creates it with the header when `valid_bytes` is 0. Returns the descriptor
// and the file's size.
static core::Result<std::pair<int, size_t>> OpenJournalFile(const std::string& path,
                                                            size_t valid_bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot open the journal", path);
  core::Status error;
  if (valid_bytes == 0) {
    if (::ftruncate(fd, 0) != 0 || !WriteAll(fd, kJournalHeader) || ::fsync(fd) != 0) {
      error = IoError("cannot create the journal", path);
    }
    SyncParentDirectory(path);
    valid_bytes = kJournalHeader.size();
  } else if (::ftruncate(fd, static_cast<off_t>(valid_bytes)) != 0 || ::fsync(fd) != 0) {
    error = IoError("cannot cut the torn tail of the journal", path);
  }
  if (error.ok() && ::lseek(fd, static_cast<off_t>(valid_bytes), SEEK_SET) < 0) {
    error = IoError("cannot seek in the journal", path);
  }
  if (!error.ok()) {
    ::close(fd);
    return error;
  }
  return std::pair{fd, valid_bytes};
}

core::Result<std::unique_ptr<FileJournal>> FileJournal::Open(const std::string& path,
                                                             size_t valid_bytes,
                                                             FsyncPolicy policy) {
  core::Result<std::pair<int, size_t>> file = OpenJournalFile(path, valid_bytes);
  if (!file.ok()) return file.status();
  return std::unique_ptr<FileJournal>(new FileJournal(file->first, path, file->second, policy));
}

FileJournal::FileJournal(int fd, std::string path, size_t bytes, FsyncPolicy policy)
    : fd_(fd),
      path_(std::move(path)),
      bytes_(bytes),
      policy_(policy),
      open_(std::make_shared<Batch>()) {}

FileJournal::~FileJournal() {
  {
    std::unique_lock lock(mutex_);
    written_.wait(lock, [this] { return !leader_active_; });
    Flush(lock);
  }
  ::fsync(fd_);
  ::close(fd_);
}

std::shared_ptr<core::Journal::Ticket> FileJournal::Append(const core::Record& record) {
  std::lock_guard lock(mutex_);
  core::EncodeRecord(record, &open_->bytes);
  ++open_->records;
  return open_;
}

core::Status FileJournal::Wait(const std::shared_ptr<Ticket>& ticket) {
  auto batch = std::static_pointer_cast<Batch>(ticket);
  std::unique_lock lock(mutex_);
  while (!batch->done) {
    if (leader_active_) {
      written_.wait(lock);
    } else {
      // No write under way, so this record's batch is still the open one:
      // write it, with everything queued alongside.
      Flush(lock);
    }
  }
  return batch->status;
}

void FileJournal::Flush(std::unique_lock<std::mutex>& lock) {
  std::shared_ptr<Batch> batch = std::move(open_);
  open_ = std::make_shared<Batch>();
  if (batch->bytes.empty()) {
    batch->done = true;
    return;
  }
  leader_active_ = true;
  lock.unlock();
  core::Status status = broken_.ok() ? WriteBatch(batch->bytes) : broken_;
  lock.lock();
  leader_active_ = false;
  // Counted before any waiter hears of the failure (see failed_records()).
  if (!status.ok()) failed_records_.fetch_add(batch->records, std::memory_order_acq_rel);
  batch->status = status;
  batch->done = true;
  written_.notify_all();
}

void StoreMetrics::Compacted(int shard) {
  std::lock_guard lock(mutex_);
  ++compactions_[shard];
}

std::map<int, uint64_t> StoreMetrics::Compactions() const {
  std::lock_guard lock(mutex_);
  return compactions_;
}

StoreMetrics& ProcessStoreMetrics() {
  static StoreMetrics metrics;
  return metrics;
}

core::Status FileJournal::WriteBatch(const std::string& bytes) {
  size_t before = bytes_.load(std::memory_order_relaxed);
  StoreMetrics& metrics = ProcessStoreMetrics();
  auto started = std::chrono::steady_clock::now();
  bool ok = WriteAll(fd_, bytes);
  auto written = std::chrono::steady_clock::now();
  metrics.journal_write.Observe(std::chrono::duration<double>(written - started).count());
  if (ok && policy_ == FsyncPolicy::kAlways) {
    ok = ::fdatasync(fd_) == 0;
    metrics.journal_fsync.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - written).count());
  }
  if (ok) {
    bytes_.store(before + bytes.size(), std::memory_order_relaxed);
    return {};
  }
  core::Status failure = IoError("cannot write the journal", path_);
  // Cut off whatever part of the batch did get written, so that the records
  // after it do not follow a partial one.
  if (::ftruncate(fd_, static_cast<off_t>(before)) != 0 ||
      ::lseek(fd_, static_cast<off_t>(before), SEEK_SET) < 0) {
    std::lock_guard lock(mutex_);
    broken_ = core::Internal(
        fmt::format("the journal {} could not be rolled back after a failed write; restart "
                    "shardctl to recover it: {}",
                    path_, failure.message()));
    return broken_;
  }
  return failure;
}

core::Status FileJournal::Sync() {
  std::lock_guard sync_lock(sync_mutex_);
  auto started = std::chrono::steady_clock::now();
  int synced = ::fdatasync(fd_);
  ProcessStoreMetrics().journal_fsync.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (synced != 0) return IoError("cannot sync the journal", path_);
  return {};
}

core::Status FileJournal::Rotate(const std::string& new_path) {
  std::lock_guard sync_lock(sync_mutex_);
  std::unique_lock lock(mutex_);
  written_.wait(lock, [this] { return !leader_active_; });
  Flush(lock);
  if (!broken_.ok()) return broken_;
  if (::fsync(fd_) != 0) return IoError("cannot sync the journal", path_);
  core::Result<std::pair<int, size_t>> next = OpenJournalFile(new_path, 0);
  if (!next.ok()) return next.status();
  ::close(fd_);
  fd_ = next->first;
  path_ = new_path;
  bytes_.store(next->second, std::memory_order_relaxed);
  return {};
}

}  // namespace shardctl::store
