#include "store/reshard_storage.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "core/shard.h"
#include "store/node_storage.h"
#include "store/shard_store.h"

namespace shardctl::store {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMarkerFile = "RESHARD";
constexpr const char* kStagingDir = "reshard-staging";
constexpr const char* kCompleteFile = "complete";
constexpr std::string_view kMarkerHeader = "shardctl reshard 1\n";
// Keys are read back for the longest --idempotency-window serve takes; each
// node drops those past its own window when it loads the new shards.
constexpr int64_t kLongestKeyWindowSeconds = int64_t{30} * 24 * 60 * 60;

fs::path StagingDir(const std::string& data_dir) { return fs::path(data_dir) / kStagingDir; }

void FsyncDirectory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// The number K of a directory named shard-K, or -1.
int ShardNumber(const fs::directory_entry& entry) {
  std::string name = entry.path().filename().string();
  if (!entry.is_directory() || !name.starts_with("shard-")) return -1;
  int shard = -1;
  auto [end, error] = std::from_chars(name.data() + 6, name.data() + name.size(), shard);
  return error == std::errc() && end == name.data() + name.size() ? shard : -1;
}

// The shard count a shard directory's meta names, or -1 if unreadable.
int MetaShardCount(const fs::path& dir) {
  std::ifstream meta(dir / "meta");
  std::string first, second;
  if (!std::getline(meta, first) || !std::getline(meta, second)) return -1;
  int id = -1, count = -1;
  if (std::sscanf(second.c_str(), "shard %d of %d", &id, &count) != 2) return -1;
  return count;
}

// Every shard-K directory of `data_dir`, with K, staged copies left out when
// `skip_staged`.
std::vector<std::pair<int, fs::path>> ShardDirs(const std::string& data_dir, bool skip_staged) {
  std::vector<std::pair<int, fs::path>> dirs;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(data_dir, error)) {
    int shard = ShardNumber(entry);
    if (shard < 0) continue;
    if (skip_staged && fs::exists(entry.path() / kStagedFile)) continue;
    dirs.emplace_back(shard, entry.path());
  }
  return dirs;
}

core::Status Failed(std::string_view what, const fs::path& path, const std::error_code& error) {
  return core::Internal(fmt::format("cannot {} {}: {}", what, path.string(), error.message()));
}

}  // namespace

core::Result<std::optional<ReshardMarker>> ReadReshardMarker(const std::string& data_dir) {
  const fs::path path = fs::path(data_dir) / kMarkerFile;
  std::ifstream file(path);
  if (!file) {
    std::error_code error;
    if (!fs::exists(path, error)) return std::optional<ReshardMarker>();
    return core::Internal(fmt::format("cannot read {}", path.string()));
  }
  std::stringstream text;
  text << file.rdbuf();
  std::string content = text.str();
  auto bad = [&path] {
    return core::Internal(fmt::format(
        "{} is not a reshard marker shardctl can read; it records a reshard that did not "
        "finish: look at it before removing it",
        path.string()));
  };
  if (!content.starts_with(kMarkerHeader)) return bad();
  std::istringstream lines(content.substr(kMarkerHeader.size()));
  ReshardMarker marker;
  std::string line;
  if (!std::getline(lines, line)) return bad();
  char node[256] = {};
  long long epoch = 0;
  if (std::sscanf(line.c_str(), "from %d to %d node %255s epoch %lld", &marker.plan.from,
                  &marker.plan.to, node, &epoch) != 4) {
    return bad();
  }
  marker.plan.node = node;
  marker.plan.epoch = epoch;
  while (std::getline(lines, line)) {
    if (!line.starts_with("data-dir ")) return bad();
    marker.data_dirs.push_back(line.substr(9));
  }
  if (marker.data_dirs.empty()) return bad();
  return std::optional<ReshardMarker>(std::move(marker));
}

core::Status WriteReshardMarker(const ReshardMarker& marker) {
  std::string text(kMarkerHeader);
  text += fmt::format("from {} to {} node {} epoch {}\n", marker.plan.from, marker.plan.to,
                      marker.plan.node, marker.plan.epoch);
  for (const std::string& dir : marker.data_dirs) text += fmt::format("data-dir {}\n", dir);
  for (const std::string& dir : marker.data_dirs) {
    if (core::Status written = WriteFileAtomically((fs::path(dir) / kMarkerFile).string(), text);
        !written.ok()) {
      return written;
    }
  }
  return {};
}

std::string FinishReshardCommand(const ReshardMarker& marker, const std::string& etcd,
                                 std::string_view tls) {
  std::string command = fmt::format("shardctl cluster reshard --etcd {} --shards {} --node-id {}",
                                    etcd.empty() ? "URL" : etcd, marker.plan.to, marker.plan.node);
  for (const std::string& dir : marker.data_dirs) command += " --data-dir " + dir;
  command += tls;
  return command;
}

core::Status CheckNoReshardUnderWay(const std::string& data_dir, const std::string& etcd,
                                    std::string_view tls) {
  core::Result<std::optional<ReshardMarker>> marker = ReadReshardMarker(data_dir);
  if (!marker.ok()) return core::InvalidArgument(marker.status().message());
  if (!marker->has_value()) return {};
  return core::InvalidArgument(fmt::format(
      "{} holds a reshard from {} to {} shards that did not finish; finish it with: {}", data_dir,
      (*marker)->plan.from, (*marker)->plan.to, FinishReshardCommand(**marker, etcd, tls)));
}

core::Result<std::vector<std::vector<core::Record>>> ReadOldShards(
    const std::vector<std::string>& data_dirs, int from, const std::vector<bool>& required) {
  // Where each old shard is: exactly one place.
  std::map<int, std::vector<fs::path>> found;
  for (const std::string& data_dir : data_dirs) {
    std::error_code error;
    if (!fs::is_directory(data_dir, error)) {
      return core::InvalidArgument(fmt::format("--data-dir {} is not a directory", data_dir));
    }
    for (const auto& [shard, dir] : ShardDirs(data_dir, /*skip_staged=*/true)) {
      if (shard >= from) {
        return core::InvalidArgument(fmt::format(
            "{} is shard {}, but the cluster has shards 0..{}: move it away from {} first",
            dir.string(), shard, from - 1, data_dir));
      }
      found[shard].push_back(dir);
    }
  }
  std::string missing;
  for (int shard = 0; shard < from; ++shard) {
    const std::vector<fs::path>& places = found[shard];
    if (places.size() > 1) {
      return core::InvalidArgument(
          fmt::format("shard {} is in both {} and {}: which is the owner's copy? Move the other "
                      "away first",
                      shard, places[0].string(), places[1].string()));
    }
    if (places.empty() && required[shard]) {
      missing += fmt::format("{}{}", missing.empty() ? "" : ", ", shard);
    }
  }
  if (!missing.empty()) {
    std::string dirs;
    for (const std::string& dir : data_dirs) dirs += (dirs.empty() ? "" : ", ") + dir;
    return core::InvalidArgument(fmt::format(
        "shard{} {} {} not in {} (a staged copy does not count): the reshard needs every "
        "shard's data where it runs; drain the other nodes to this one first (shardctl cluster "
        "drain), or add their data directories with --data-dir",
        missing.find(',') == std::string::npos ? "" : "s", missing,
        missing.find(',') == std::string::npos ? "is" : "are", dirs));
  }

  // Each read through its store (which takes its lock), then let go.
  std::vector<std::vector<core::Record>> shards(from);
  for (int shard = 0; shard < from; ++shard) {
    if (found[shard].empty()) continue;
    const fs::path& dir = found[shard][0];
    core::Result<std::unique_ptr<ShardStore>> store =
        ShardStore::Open({.data_dir = dir.parent_path().string(),
                          .shard_id = shard,
                          .shard_count = from,
                          .fsync = FsyncPolicy::kNo,
                          .cluster_node = true});
    if (!store.ok()) return store.status();
    core::Shard read(shard, nullptr, nullptr, kLongestKeyWindowSeconds);
    for (const core::Record& record : (*store)->recovered()) {
      if (core::Status replayed = read.Replay(record); !replayed.ok()) {
        return core::Internal(
            fmt::format("the store in {} is corrupt: {}", dir.string(), replayed.message()));
      }
    }
    core::Result<std::vector<core::Record>> checkpoint =
        read.Checkpoint([] { return core::Status(); });
    if (!checkpoint.ok()) return checkpoint.status();
    shards[shard] = std::move(*checkpoint);
  }
  return shards;
}

core::Status StageNewShards(const std::string& data_dir,
                            const std::vector<std::vector<core::Record>>& shards) {
  const fs::path staging = StagingDir(data_dir);
  std::error_code error;
  fs::remove_all(staging, error);
  if (error) return Failed("remove", staging, error);
  fs::create_directories(staging, error);
  if (error) return Failed("create", staging, error);
  const int count = static_cast<int>(shards.size());
  for (int shard = 0; shard < count; ++shard) {
    core::Result<std::unique_ptr<ShardStore>> store =
        ShardStore::Open({.data_dir = staging.string(),
                          .shard_id = shard,
                          .shard_count = count,
                          .fsync = FsyncPolicy::kAlways});
    if (!store.ok()) return store.status();
    core::Shard staged(shard, nullptr, (*store)->journal(), kLongestKeyWindowSeconds);
    for (const core::Record& record : shards[shard]) {
      if (core::Status replayed = staged.Replay(record); !replayed.ok()) return replayed;
    }
    // The snapshot holds everything (written and fsync'ed); the journal is empty.
    if (core::Status compacted = (*store)->Compact(staged); !compacted.ok()) return compacted;
  }
  FsyncDirectory(staging);
  FsyncDirectory(data_dir);  // the staging directory's own entry
  return WriteFileAtomically((staging / kCompleteFile).string(), "");
}

bool StagingComplete(const std::string& data_dir) {
  std::error_code error;
  return fs::exists(StagingDir(data_dir) / kCompleteFile, error);
}

core::Status AbandonReshard(const ReshardMarker& marker) {
  std::error_code error;
  fs::remove_all(StagingDir(marker.data_dirs[0]), error);
  if (error) return Failed("remove", StagingDir(marker.data_dirs[0]), error);
  for (const std::string& dir : marker.data_dirs) {
    fs::remove(fs::path(dir) / kMarkerFile, error);
    if (error) return Failed("remove", fs::path(dir) / kMarkerFile, error);
  }
  return {};
}

core::Result<std::vector<std::string>> SwapInNewShards(const ReshardMarker& marker) {
  const core::ReshardPlan& plan = marker.plan;
  const fs::path target(marker.data_dirs[0]);
  const fs::path staging = StagingDir(marker.data_dirs[0]);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  std::error_code error;
  const bool staged = fs::exists(staging, error);
  if (staged && !StagingComplete(marker.data_dirs[0])) {
    return core::Internal(fmt::format(
        "{} is incomplete, yet etcd holds the reshard: the staged shards were lost; restore "
        "the old shards from {}/retired and the cluster in etcd from a backup",
        staging.string(), target.string()));
  }

  // Old shards (and staged copies of moves) set aside, each while holding
  // its lock, so that none is in use.
  std::vector<std::string> retired;
  for (const std::string& data_dir : marker.data_dirs) {
    for (const auto& [shard, dir] : ShardDirs(data_dir, /*skip_staged=*/false)) {
      const bool copy = fs::exists(dir / kStagedFile, error);
      const int count = MetaShardCount(dir);
      if (!copy && count != plan.from) continue;  // a new shard, moved in already
      std::unique_ptr<ShardStore> held;
      if (!copy) {
        core::Result<std::unique_ptr<ShardStore>> store = ShardStore::Open(
            {.data_dir = data_dir, .shard_id = shard, .shard_count = plan.from,
             .fsync = FsyncPolicy::kNo, .cluster_node = true});
        if (!store.ok()) return store.status();
        held = std::move(*store);
      }
      const fs::path aside = fs::path(data_dir) / "retired";
      fs::create_directories(aside, error);
      if (error) return Failed("create", aside, error);
      const fs::path to = aside / fmt::format("shard-{}.{}resharded-{}-to-{}-{}", shard,
                                              copy ? "staged-" : "", plan.from, plan.to, now_ms);
      fs::rename(dir, to, error);
      if (error) return Failed("move away", dir, error);
      FsyncDirectory(data_dir);
      retired.push_back(to.string());
    }
  }

  // The staged shards into place.
  if (staged) {
    for (int shard = 0; shard < plan.to; ++shard) {
      const fs::path from = staging / fmt::format("shard-{}", shard);
      const fs::path to = target / fmt::format("shard-{}", shard);
      if (!fs::exists(from, error)) continue;  // moved before a crash
      if (fs::exists(to, error)) {
        return core::Internal(fmt::format("cannot move {} to {}: it exists already",
                                          from.string(), to.string()));
      }
      fs::rename(from, to, error);
      if (error) return Failed("move", from, error);
    }
    FsyncDirectory(target);
  }
  if (core::Status abandoned = AbandonReshard(marker); !abandoned.ok()) return abandoned;
  for (const std::string& dir : marker.data_dirs) FsyncDirectory(dir);
  return retired;
}

}  // namespace shardctl::store
