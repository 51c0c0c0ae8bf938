// The disk side of `shardctl cluster reshard` (core/reshard.h is the pure
// side): finding and reading the old shards in one or more data directories,
// staging the new ones, the marker that records a reshard that has not
// finished, and the swap that puts the new shards in place. Layout, in the
// first data directory:
//   RESHARD                 the marker (also in every other data directory
//                           involved): the plan and the data directories
//   reshard-staging/shard-J the new shards, complete once the file
//   reshard-staging/complete  exists (written last, fsync'ed)
//   retired/shard-K.resharded-N-to-M-<ms>  each old shard, set aside, never deleted
// Order: marker, staging, the commit in etcd, then the swap; each step can
// be done again, so running the same command again finishes a reshard that
// stopped anywhere. Not thread-safe: one reshard at a time.
#ifndef SHARDCTL_STORE_RESHARD_STORAGE_H_
#define SHARDCTL_STORE_RESHARD_STORAGE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/record.h"
#include "core/reshard.h"
#include "core/status.h"

namespace shardctl::store {

// A reshard under way: its plan and every data directory it reads.
struct ReshardMarker {
  core::ReshardPlan plan;
  std::vector<std::string> data_dirs;  // the first gets the new shards
  bool operator==(const ReshardMarker&) const = default;
};

// The marker in `data_dir`, std::nullopt if none, or kInternal when it
// cannot be read.
core::Result<std::optional<ReshardMarker>> ReadReshardMarker(const std::string& data_dir);
// Writes the marker into every one of its data directories (fsync'ed).
core::Status WriteReshardMarker(const ReshardMarker& marker);

// The command that finishes the marker's reshard, for messages; `tls` is
// added as it is (the --cacert/--cert/--key of the command that failed).
std::string FinishReshardCommand(const ReshardMarker& marker, const std::string& etcd,
                                 std::string_view tls = {});

// OK when `data_dir` holds no unfinished reshard; otherwise kInvalidArgument
// saying which command finishes it (`etcd`: the URL to put in it; `tls`: as
// FinishReshardCommand's).
core::Status CheckNoReshardUnderWay(const std::string& data_dir, const std::string& etcd,
                                    std::string_view tls = {});

// Reads old shards 0..from-1 from `data_dirs`, each of which must be found
// exactly once as a shard-K directory that is not a staged copy; shards not
// in `required` may be absent (never claimed: empty). Returns each shard's
// checkpoint (kSet, kKey and kAnyValueKey records; keys of the last 30 days,
// the longest --idempotency-window), or: kInvalidArgument naming what is
// missing, found twice, beyond `from` or made for another shard count;
// kUnavailable when a shard is in use by a running shardctl (its LOCK);
// kInternal for a corrupt or unreadable store. Changes nothing but what
// opening a store does (its meta is upgraded to the current format).
core::Result<std::vector<std::vector<core::Record>>> ReadOldShards(
    const std::vector<std::string>& data_dirs, int from, const std::vector<bool>& required);

// Makes DATA_DIR/reshard-staging anew with shard-J for each of `shards`
// (a snapshot each, made for shards.size() shards), then the file
// `complete`. Returns kInternal on a failure to write.
core::Status StageNewShards(const std::string& data_dir,
                            const std::vector<std::vector<core::Record>>& shards);
// True when the staging in `data_dir` is complete.
bool StagingComplete(const std::string& data_dir);
// Removes the staging and every marker: a reshard that will not be
// committed. Returns kInternal on a failure to remove.
core::Status AbandonReshard(const ReshardMarker& marker);

// After the commit: sets every old shard of the marker's data directories
// aside (old: its meta says `from` shards; staged copies too) under
// retired/, moves the staged shards into the first data directory, removes
// the staging and the markers. Can be run again after a crash at any point.
// Returns the paths the old shards went to, kUnavailable when one is in use,
// or kInternal.
core::Result<std::vector<std::string>> SwapInNewShards(const ReshardMarker& marker);

}  // namespace shardctl::store

#endif  // SHARDCTL_STORE_RESHARD_STORAGE_H_
