#include "core/aggregator.h"

#include <cassert>
#include <future>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "core/router.h"

namespace shardctl::core {

Aggregator::Aggregator(std::vector<std::unique_ptr<ShardClient>> shards)
    : shards_(std::move(shards)) {
  assert(!shards_.empty());
  for (const auto& shard : shards_) {
    assert(shard != nullptr);
    all_in_process_ = all_in_process_ && shard->InProcess();
  }
}

Result<IncrementReply> Aggregator::Increment(int64_t value) {
  return shards_[ShardFor(value, shard_count())]->Increment(value);
}

Result<int64_t> Aggregator::Total() {
  std::vector<Result<int64_t>> counts;
  counts.reserve(shards_.size());
  if (all_in_process_) {
    for (auto& shard : shards_) counts.push_back(shard->Count());
  } else {
    // Shard 0 is asked on this thread while the others are asked on their own.
    std::vector<std::future<Result<int64_t>>> pending;
    for (size_t i = 1; i < shards_.size(); ++i) {
      pending.push_back(
          std::async(std::launch::async, [&shard = *shards_[i]] { return shard.Count(); }));
    }
    counts.push_back(shards_[0]->Count());
    for (auto& future : pending) counts.push_back(future.get());
  }

  Status first_failure;
  std::string failures;
  for (const Result<int64_t>& count : counts) {
    if (count.ok()) continue;
    if (first_failure.ok()) first_failure = count.status();
    failures += failures.empty() ? "" : "; ";
    failures += count.status().message();
  }
  if (!first_failure.ok()) {
    return Status(first_failure.code(), fmt::format("no total: {}", failures));
  }

  // Summed in 128 bits: counts may be negative, so a running int64 sum could
  // overflow on the way to a total that fits.
  __extension__ using Int128 = __int128;  // a GCC/Clang extension, hence __extension__
  Int128 total = 0;
  for (const Result<int64_t>& count : counts) total += *count;
  if (total > std::numeric_limits<int64_t>::max() || total < std::numeric_limits<int64_t>::min()) {
    return Internal("the total of all shards does not fit in a 64-bit count");
  }
  return static_cast<int64_t>(total);
}

}  // namespace shardctl::core
