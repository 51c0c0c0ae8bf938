#include "store/shard_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <fmt/format.h>

namespace shardctl::store {
namespace {

constexpr std::string_view kSnapshotMagic = "SHCS";
constexpr std::string_view kSnapshotEnd = "END!";
constexpr uint32_t kFormatVersion = 5;  // 5: journals may hold kGroup records
// Snapshots of this format and later hold packed records (core::PackRecords).
constexpr uint32_t kPackedSnapshotVersion = 4;
constexpr uint32_t kOldestReadableVersion = 1;

core::Status SystemError(std::string_view what, const std::string& path) {
  return core::Internal(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

// Returns the file's bytes, nullopt if it does not exist, or the failure.
core::Result<std::optional<std::string>> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return SystemError("cannot read", path);
  }
  std::string data;
  char buffer[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0) data.append(buffer, static_cast<size_t>(n));
  int error = errno;
  ::close(fd);
  if (n < 0) {
    errno = error;
    return SystemError("cannot read", path);
  }
  return std::optional<std::string>(std::move(data));
}


// mkdir -p.
core::Status MakeDirectories(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    std::string prefix = path.substr(0, slash);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return SystemError("cannot create the data directory", prefix);
    }
    if (slash == std::string::npos) return {};
  }
}

// The names in `dir` that are "<prefix><number>", with their numbers.
std::vector<std::pair<uint64_t, std::string>> NumberedEntries(const std::string& dir,
                                                              std::string_view prefix) {
  std::vector<std::pair<uint64_t, std::string>> entries;
  DIR* handle = ::opendir(dir.c_str());
  if (handle == nullptr) return entries;
  while (dirent* entry = ::readdir(handle)) {
    std::string_view name = entry->d_name;
    if (!name.starts_with(prefix) || name.size() == prefix.size()) continue;
    std::string_view digits = name.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string_view::npos || digits.size() > 18) {
      continue;
    }
    entries.emplace_back(std::stoull(std::string(digits)), std::string(name));
  }
  ::closedir(handle);
  std::sort(entries.begin(), entries.end());
  return entries;
}

template <typename T>
void PutInt(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}
template <typename T>
T GetInt(std::string_view data, size_t at) {
  T value;
  std::memcpy(&value, data.data() + at, sizeof(T));
  return value;
}

std::string MetaText(int shard_id, int shard_count, uint32_t version = kFormatVersion) {
  return fmt::format("shardctl store {}\nshard {} of {}\n", version, shard_id, shard_count);
}

}  // namespace

core::Status WriteFileAtomically(const std::string& path, std::string_view data) {
  std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return SystemError("cannot create", temporary);
  bool ok = true;
  for (std::string_view rest = data; ok && !rest.empty();) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) rest.remove_prefix(static_cast<size_t>(n));
  }
  ok = ok && ::fsync(fd) == 0;
  int error = errno;
  ::close(fd);
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
    if (ok) error = errno;
    ::unlink(temporary.c_str());
    errno = error;
    return SystemError("cannot write", path);
  }
  int dir = ::open(path.substr(0, path.rfind('/')).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

std::string DefaultDataDir() {
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && *state == '/') {
    return std::string(state) + "/shardctl";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : ".") + "/.local/state/shardctl";
}

core::Status CheckNoExtraShards(const std::string& data_dir, int shard_count) {
  for (const auto& [id, name] : NumberedEntries(data_dir, "shard-")) {
    if (id >= static_cast<uint64_t>(shard_count)) {
      return core::InvalidArgument(fmt::format(
          "{} holds {}, so it was made with more than {} shards. With value mod N routing, "
          "starting with fewer shards would silently drop that shard's counts from every "
          "total: start with the shard count it was made with, or use another --data-dir",
          data_dir, name, shard_count));
    }
  }
  return {};
}

core::Result<std::unique_ptr<ShardStore>> ShardStore::Open(const StoreOptions& options) {
  std::unique_ptr<ShardStore> store(new ShardStore());
  store->options_ = options;
  store->dir_ = fmt::format("{}/shard-{}", options.data_dir, options.shard_id);
  const std::string& dir = store->dir_;
  if (core::Status made = MakeDirectories(dir); !made.ok()) return made;

  // The lock first: another process may be writing here.
  std::string lock_path = dir + "/LOCK";
  store->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (store->lock_fd_ < 0) return SystemError("cannot open", lock_path);
  if (::flock(store->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    ssize_t n = ::pread(store->lock_fd_, pid, sizeof(pid) - 1, 0);
    std::string holder(pid, n > 0 ? static_cast<size_t>(n) : 0);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return core::Unavailable(fmt::format(
        "the data directory {} is in use by another shardctl (pid {}); stop it or choose another "
        "--data-dir",
        dir, holder.empty() ? "unknown" : holder));
  }
  std::string pid = fmt::format("{}\n", ::getpid());
  if (::ftruncate(store->lock_fd_, 0) != 0 ||
      ::pwrite(store->lock_fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return SystemError("cannot write", lock_path);
  }

  // What the directory was made for.
  core::Result<std::optional<std::string>> meta = ReadFile(dir + "/meta");
  if (!meta.ok()) return meta.status();
  std::string expected_meta = MetaText(options.shard_id, options.shard_count);
  auto journals = NumberedEntries(dir, "journal-");
  bool upgrade = false;  // an older format's directory, upgraded once it has been read
  for (uint32_t version = kOldestReadableVersion; version < kFormatVersion; ++version) {
    upgrade = upgrade || (meta->has_value() &&
                          **meta == MetaText(options.shard_id, options.shard_count, version));
  }
  if (upgrade) {
    // Read as it is below.
  } else if (!meta->has_value()) {
    if (!journals.empty() || ::access((dir + "/snapshot").c_str(), F_OK) == 0) {
      return core::Internal(
          fmt::format("the store in {} is corrupt: its meta file is missing", dir));
    }
    if (core::Status written = WriteFileAtomically(dir + "/meta", expected_meta); !written.ok()) {
      return written;
    }
  } else if (**meta != expected_meta) {
    int id = -1, count = -1;
    unsigned version = 0;
    if (std::sscanf((*meta)->c_str(), "shardctl store %u\nshard %d of %d", &version, &id, &count) !=
            3 ||
        version < kOldestReadableVersion || version > kFormatVersion) {
      return core::Internal(
          fmt::format("the store in {} is not one this shardctl can read (its meta file says: {})",
                      dir, (*meta)->substr(0, 80)));
    }
    if (id != options.shard_id) {
      return core::InvalidArgument(
          fmt::format("{} belongs to shard {}, not shard {}", dir, id, options.shard_id));
    }
    if (options.cluster_node) {
      return core::InvalidArgument(fmt::format(
          "{} was made for a cluster of {} shards, but the cluster in etcd has {}: the cluster "
          "was resharded (shardctl cluster reshard) without this directory, so its counts are "
          "not the cluster's; move it away, or start this node with another --data-dir",
          dir, count, options.shard_count));
    }
    return core::InvalidArgument(fmt::format(
        "{} was made with {} shards, not {}. With value mod N routing, a different shard count "
        "would send values to other shards and silently drop counts from totals: start with "
        "--shards {}, or use another --data-dir",
        dir, count, options.shard_count, count));
  }

  // The snapshot, if any.
  core::Result<std::optional<std::string>> snapshot = ReadFile(dir + "/snapshot");
  if (!snapshot.ok()) return snapshot.status();
  auto corrupt = [&dir](std::string_view file, std::string_view why) {
    return core::Internal(fmt::format(
        "the store in {} is corrupt ({}: {}); shardctl will not overwrite it: move it away or "
        "restore it from a backup",
        dir, file, why));
  };
  if (snapshot->has_value()) {
    std::string_view data = **snapshot;
    constexpr size_t kHeader = 4 + 4 + 8 + 4 + 4, kTrailer = 4 + 4;
    if (data.size() < kHeader + kTrailer || !data.starts_with(kSnapshotMagic) ||
        !data.ends_with(kSnapshotEnd)) {
      return corrupt("snapshot", "not a complete snapshot");
    }
    std::string_view body = data.substr(0, data.size() - kTrailer);
    if (GetInt<uint32_t>(data, data.size() - kTrailer) != core::Crc32c(body)) {
      return corrupt("snapshot", "checksum mismatch");
    }
    if (uint32_t version = GetInt<uint32_t>(data, 4);
        version < kOldestReadableVersion || version > kFormatVersion) {
      return corrupt("snapshot", fmt::format("unknown format version {}", version));
    }
    store->generation_ = GetInt<uint64_t>(data, 8);
    if (GetInt<uint32_t>(data, 4) >= kPackedSnapshotVersion) {
      core::Result<std::vector<core::Record>> records = core::UnpackRecords(body.substr(kHeader));
      if (!records.ok()) return corrupt("snapshot", records.status().message());
      store->recovered_ = std::move(records).value();
    } else {
      core::Result<core::Scan> scan = core::ScanRecords(body.substr(kHeader));
      if (!scan.ok()) return corrupt("snapshot", scan.status().message());
      if (scan->torn_tail) return corrupt("snapshot", "a record is cut short");
      store->recovered_ = std::move(scan->records);
    }
    store->snapshot_bytes_ = data.size();
  }

  // The journals since the snapshot; only the last may end in a torn record.
  std::erase_if(journals, [&](const auto& entry) { return entry.first < store->generation_; });
  size_t append_at = 0;
  store->journal_generation_ = store->generation_;
  for (size_t i = 0; i < journals.size(); ++i) {
    const auto& [generation, name] = journals[i];
    bool last = i + 1 == journals.size();
    core::Result<std::optional<std::string>> data = ReadFile(dir + "/" + name);
    if (!data.ok()) return data.status();
    std::string_view bytes = **data;
    bool old_format = bytes.starts_with(kJournalHeaderV1);
    if (!bytes.starts_with(kJournalHeader) && !old_format) {
      if (last && bytes.size() < kJournalHeader.size() && kJournalHeader.starts_with(bytes)) {
        store->journal_generation_ = generation;  // created, then cut short by a crash
        break;
      }
      return corrupt(name, "not a shardctl journal");
    }
    // Both formats share the record encoding; format 1 records have no keys.
    core::Result<core::Scan> scan = core::ScanRecords(bytes.substr(kJournalHeader.size()));
    if (!scan.ok()) return corrupt(name, scan.status().message());
    if (scan->torn_tail && !last) return corrupt(name, "a record is cut short");
    for (core::Record& record : scan->records) store->recovered_.push_back(std::move(record));
    if (last) {
      store->journal_generation_ = generation;
      append_at = kJournalHeader.size() + scan->valid_bytes;
      if (old_format) {
        // Keyed records go to a journal of the new format, after this one,
        // which is no longer the last: cut its torn tail, if any, now.
        if (scan->torn_tail &&
            ::truncate((dir + "/" + name).c_str(), static_cast<off_t>(append_at)) != 0) {
          return SystemError("cannot cut the torn tail of", dir + "/" + name);
        }
        store->journal_generation_ = generation + 1;
        append_at = 0;
      }
    }
  }

  // An older format's directory, read without a problem: from now on it
  // holds the current format, which an older shardctl refuses rather than
  // misreads.
  if (upgrade) {
    if (core::Status written = WriteFileAtomically(dir + "/meta", expected_meta); !written.ok()) {
      return written;
    }
  }

  core::Result<std::unique_ptr<FileJournal>> journal = FileJournal::Open(
      fmt::format("{}/journal-{}", dir, store->journal_generation_), append_at, options.fsync);
  if (!journal.ok()) return journal.status();
  store->journal_ = std::move(*journal);
  // Files a finished compaction left behind.
  for (const auto& [generation, name] : NumberedEntries(dir, "journal-")) {
    if (generation < store->generation_) ::unlink((dir + "/" + name).c_str());
  }
  ::unlink((dir + "/snapshot.tmp").c_str());
  return store;
}

ShardStore::~ShardStore() {
  journal_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

bool ShardStore::NeedsCompaction() const {
  return journal_->bytes() > std::max(options_.compact_min_bytes, 2 * snapshot_bytes_);
}

core::Status ShardStore::Compact(core::Shard& shard) {
  // After a failed compaction the journal already moved on: always rotate
  // into a journal that does not exist yet, never into the one in use.
  uint64_t next_generation = journal_generation_ + 1;
  std::string next_journal = fmt::format("{}/journal-{}", dir_, next_generation);
  core::Result<std::vector<core::Record>> records = shard.Checkpoint([&] {
    core::Status rotated = journal_->Rotate(next_journal);
    if (rotated.ok()) journal_generation_ = next_generation;
    return rotated;
  });
  if (!records.ok()) return records.status();

  std::string data;
  data += kSnapshotMagic;
  PutInt<uint32_t>(&data, kFormatVersion);
  PutInt<uint64_t>(&data, next_generation);
  PutInt<uint32_t>(&data, static_cast<uint32_t>(options_.shard_id));
  PutInt<uint32_t>(&data, static_cast<uint32_t>(options_.shard_count));
  core::PackRecords(*records, &data);
  PutInt<uint32_t>(&data, core::Crc32c(data));
  data += kSnapshotEnd;
  // Until the snapshot is in place, the old snapshot and both journals still
  // recover everything, so a failure here loses nothing.
  if (core::Status written = WriteFileAtomically(dir_ + "/snapshot", data); !written.ok()) {
    return written;
  }
  for (uint64_t covered = generation_; covered < next_generation; ++covered) {
    ::unlink(fmt::format("{}/journal-{}", dir_, covered).c_str());
  }
  generation_ = next_generation;
  snapshot_bytes_ = data.size();
  ProcessStoreMetrics().Compacted(options_.shard_id);
  // The checkpoint's copy of every counter and the snapshot's bytes are
  // freed: give the memory back rather than keep the process's peak.
  std::vector<core::Record>().swap(*records);
  std::string().swap(data);
  ::malloc_trim(0);
  return {};
}

void ShardStore::ForgetRecovered() {
  std::vector<core::Record>().swap(recovered_);
  ::malloc_trim(0);
}

}  // namespace shardctl::store
