#include "core/aggregator.h"

#include <algorithm>
#include <cassert>
#include <future>
#include <limits>
#include <unordered_map>

#include <fmt/format.h>

#include "core/router.h"

namespace shardctl::core {
namespace {

__extension__ using Int128 = __int128;  // a GCC/Clang extension, hence __extension__

bool FitsInt64(Int128 value) {
  return value >= std::numeric_limits<int64_t>::min() &&
         value <= std::numeric_limits<int64_t>::max();
}

// Returns OK if every result is; otherwise a Status with the first failure's
// code whose message names every failure.
template <typename T>
Status CombineFailures(const std::vector<Result<T>>& results, std::string_view what) {
  Status first;
  std::string failures;
  for (const Result<T>& result : results) {
    if (result.ok()) continue;
    if (first.ok()) first = result.status();
    failures += failures.empty() ? "" : "; ";
    failures += result.status().message();
  }
  if (first.ok()) return first;
  return Status(first.code(), fmt::format("{}: {}", what, failures));
}

}  // namespace

Aggregator::Aggregator(std::vector<std::unique_ptr<ShardClient>> shards)
    : shards_(std::move(shards)) {
  assert(!shards_.empty());
  for (const auto& shard : shards_) {
    assert(shard != nullptr);
    all_in_process_ = all_in_process_ && shard->InProcess();
  }
}

template <typename T, typename Call>
std::vector<Result<T>> Aggregator::AskEveryShard(const Call& call) {
  std::vector<Result<T>> results;
  results.reserve(shards_.size());
  if (all_in_process_) {
    for (auto& shard : shards_) results.push_back(call(*shard));
    return results;
  }
  // Shard 0 is asked on this thread while the others are asked on their own.
  std::vector<std::future<Result<T>>> pending;
  for (size_t i = 1; i < shards_.size(); ++i) {
    pending.push_back(
        std::async(std::launch::async, [&call, &shard = *shards_[i]] { return call(shard); }));
  }
  results.push_back(call(*shards_[0]));
  for (auto& future : pending) results.push_back(future.get());
  return results;
}

Result<IncrementReply> Aggregator::Increment(const IncrementRequest& request) {
  return shards_[ShardFor(request.value, shard_count())]->Increment(request);
}

Result<TotalReply> Aggregator::Total(const CounterRef& counter) {
  auto counts =
      AskEveryShard<CountReply>([&counter](ShardClient& shard) { return shard.Count(counter); });
  if (Status failed = CombineFailures(counts, "no total"); !failed.ok()) return failed;

  // Summed in 128 bits: parts may be negative, so a running int64 sum could
  // overflow on the way to a total that fits.
  TotalReply reply;
  Int128 total = 0;
  for (const Result<CountReply>& count : counts) {
    total += count->count;
    reply.parts.push_back(count->count);
    reply.window_end = std::max(reply.window_end, count->window_end);
  }
  if (!FitsInt64(total)) return Internal("the total of all shards does not fit in a 64-bit count");
  reply.total = static_cast<int64_t>(total);
  return reply;
}

Result<CounterList> Aggregator::List(const ListQuery& query) {
  assert(query.limit >= 1 && query.top >= 0);
  auto lists = AskEveryShard<std::vector<CounterPart>>(
      [&query](ShardClient& shard) { return shard.List(query.prefix); });
  if (Status failed = CombineFailures(lists, "no listing"); !failed.ok()) return failed;

  std::unordered_map<std::string_view, Int128> totals;
  for (const auto& list : lists) {
    for (const CounterPart& part : *list) totals[part.name] += part.count;
  }
  std::vector<CounterTotal> selected;
  selected.reserve(query.top > 0 ? 0 : totals.size());
  for (const auto& [name, total] : totals) {
    if (query.top <= 0 && name <= std::string_view(query.after)) continue;
    if (!FitsInt64(total)) {
      return Internal(fmt::format("the total of '{}' does not fit in a 64-bit count", name));
    }
    selected.push_back({std::string(name), static_cast<int64_t>(total)});
  }

  CounterList result;
  if (query.top > 0) {
    auto higher = [](const CounterTotal& a, const CounterTotal& b) {
      return a.total != b.total ? a.total > b.total : a.name < b.name;
    };
    size_t keep = std::min(selected.size(), static_cast<size_t>(query.top));
    std::partial_sort(selected.begin(), selected.begin() + keep, selected.end(), higher);
    selected.resize(keep);
  } else {
    auto by_name = [](const CounterTotal& a, const CounterTotal& b) { return a.name < b.name; };
    size_t keep = std::min(selected.size(), static_cast<size_t>(query.limit));
    std::partial_sort(selected.begin(), selected.begin() + keep, selected.end(), by_name);
    if (keep < selected.size()) result.next = selected[keep - 1].name;
    selected.resize(keep);
  }
  result.counters = std::move(selected);
  return result;
}

Result<int64_t> Aggregator::Reset(const std::string& name) {
  auto removed = AskEveryShard<int64_t>([&name](ShardClient& shard) { return shard.Reset(name); });
  if (Status failed =
          CombineFailures(removed, "reset incomplete (shards not named here did reset)");
      !failed.ok()) {
    return failed;
  }
  Int128 total = 0;
  for (const Result<int64_t>& part : removed) total += *part;
  if (!FitsInt64(total)) return Internal("the removed total does not fit in a 64-bit count");
  return static_cast<int64_t>(total);
}

}  // namespace shardctl::core
