#include "core/shard_client.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace shardctl::core {

bool RanksBefore(const CounterPart& part, const RankCursor& cursor) {
  return part.count != cursor.count ? part.count > cursor.count : part.name < cursor.name;
}

std::vector<CounterPart> SelectPage(std::vector<CounterPart> parts, const PageQuery& query) {
  std::erase_if(parts, [&](const CounterPart& part) {
    return part.name <= query.after || !part.name.starts_with(query.prefix);
  });
  auto by_name = [](const CounterPart& a, const CounterPart& b) { return a.name < b.name; };
  size_t keep = std::min(parts.size(), query.limit);
  std::partial_sort(parts.begin(), parts.begin() + static_cast<ptrdiff_t>(keep), parts.end(),
                    by_name);
  parts.resize(keep);
  return parts;
}

std::vector<CounterPart> SelectRank(std::vector<CounterPart> parts, const RankQuery& query) {
  std::erase_if(parts, [&](const CounterPart& part) {
    if (!part.name.starts_with(query.prefix)) return true;
    // The cursor's own counter was seen, wherever its count has gone since.
    return !query.from_start && (RanksBefore(part, query.after) || part.name == query.after.name);
  });
  auto higher = [](const CounterPart& a, const CounterPart& b) {
    return RanksBefore(a, RankCursor{b.count, b.name});
  };
  size_t keep = std::min(parts.size(), query.limit);
  std::partial_sort(parts.begin(), parts.begin() + static_cast<ptrdiff_t>(keep), parts.end(),
                    higher);
  parts.resize(keep);
  return parts;
}

Result<std::vector<CounterPart>> ShardClient::ListPage(const PageQuery& query) {
  Result<std::vector<CounterPart>> parts = List(query.prefix);
  if (!parts.ok()) return parts.status();
  return SelectPage(std::move(parts).value(), query);
}

Result<std::vector<CounterPart>> ShardClient::Rank(const RankQuery& query) {
  Result<std::vector<CounterPart>> parts = List(query.prefix);
  if (!parts.ok()) return parts.status();
  return SelectRank(std::move(parts).value(), query);
}

Result<std::vector<int64_t>> ShardClient::Counts(const std::vector<std::string>& names) {
  std::vector<int64_t> counts;
  counts.reserve(names.size());
  for (const std::string& name : names) {
    Result<CountReply> count = Count(CounterRef{name, 0});
    if (!count.ok()) return count.status();
    counts.push_back(count->count);
  }
  return counts;
}

Result<ManyReply> ShardClient::IncrementMany(const ManyRequest&) {
  return Internal(fmt::format("{} cannot take increments of many counters at once", Describe()));
}

}  // namespace shardctl::core
