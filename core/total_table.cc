#include "core/total_table.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

#include "core/int128.h"
#include "core/shard.h"

namespace shardctl::core {

TotalTable::TotalTable()
    : arena_(sizeof(Payload)),
      by_hash_(0, NameRefHash{&arena_}, NameRefEq{&arena_}),
      by_rank_(Less{&arena_}) {}

TotalTable::Payload TotalTable::PayloadOf(uint32_t ref) const {
  Payload payload;
  std::memcpy(&payload, arena_.Payload(ref), sizeof payload);
  return payload;
}

void TotalTable::SetPayload(uint32_t ref, const Payload& payload) {
  std::memcpy(arena_.Payload(ref), &payload, sizeof payload);
}

void TotalTable::OnPlainChange(std::string_view name, int64_t was, int64_t now, int held) {
  std::lock_guard lock(mutex_);
  ChangeLocked(name, was, now, held);
}

void TotalTable::Reserve(size_t names) {
  std::lock_guard lock(mutex_);
  by_hash_.reserve(names);
}

void TotalTable::AddParts(const std::vector<std::pair<std::string_view, int64_t>>& parts) {
  std::lock_guard lock(mutex_);
  by_hash_.reserve(by_hash_.size() + parts.size());
  for (const auto& [name, count] : parts) ChangeLocked(name, 0, count, +1);
}

void TotalTable::ChangeLocked(std::string_view name, int64_t was, int64_t now, int held) {
  auto it = by_hash_.find(name);
  uint32_t ref;
  Payload payload{0, 0, 0};
  if (it == by_hash_.end()) {
    assert(held > 0);
    ref = arena_.Add(name);
  } else {
    ref = *it;
    payload = PayloadOf(ref);
  }
  const Int128 before = (Int128(payload.carry) << 64) + Int128(payload.low);
  const Int128 after = before + (Int128(now) - Int128(was));
  const bool ranked_before = ranked_ && payload.holders > 0 && FitsInt64(before);
  payload.holders = static_cast<uint16_t>(payload.holders + held);
  payload.low = static_cast<uint64_t>(after);
  payload.carry = static_cast<int16_t>(after >> 64);
  const bool present = payload.holders > 0;
  const bool ranked_after = ranked_ && present && FitsInt64(after);
  if (it != by_hash_.end() && !FitsInt64(before)) --out_of_range_;
  if (present && !FitsInt64(after)) ++out_of_range_;

  if (ranked_before && ranked_after) {
    if (before != after)
      MoveInRank(by_rank_, Key{static_cast<int64_t>(after), ref}, static_cast<int64_t>(before));
  } else if (ranked_before) {
    by_rank_.erase(Key{static_cast<int64_t>(before), ref});
  } else if (ranked_after) {
    by_rank_.insert(Key{static_cast<int64_t>(after), ref});
  }
  if (!present) {
    // No shard holds a part: the name goes (its total is 0 by then).
    if (it != by_hash_.end()) by_hash_.erase(it);
    arena_.Free(ref);
    return;
  }
  SetPayload(ref, payload);
  if (it == by_hash_.end()) by_hash_.insert(ref);
}

void TotalTable::BuildRankIndexLocked() const {
  if (ranked_) return;
  // Sorted by count and the first 8 bytes of the name, so that most ties
  // are settled without reading names from the arena.
  struct Sortable {
    int64_t count;
    uint64_t head;
    uint32_t name;
  };
  std::vector<Sortable> keys;
  keys.reserve(by_hash_.size());
  for (uint32_t ref : by_hash_) {
    const Payload payload = PayloadOf(ref);
    const Int128 total = (Int128(payload.carry) << 64) + Int128(payload.low);
    if (FitsInt64(total))
      keys.push_back({static_cast<int64_t>(total), NameHead(arena_.Get(ref)), ref});
  }
  std::sort(keys.begin(), keys.end(), [this](const Sortable& a, const Sortable& b) {
    if (a.count != b.count) return a.count > b.count;
    if (a.head != b.head) return a.head < b.head;
    return arena_.Get(a.name) < arena_.Get(b.name);
  });
  // In order, each at the end: absl's B-tree then leaves its nodes full.
  for (const Sortable& key : keys) by_rank_.insert(by_rank_.end(), Key{key.count, key.name});
  ranked_ = true;
}

void TotalTable::FillOnFirstUse(std::vector<Shard*> shards) { unfilled_ = std::move(shards); }

std::optional<std::vector<CounterPart>> TotalTable::Top(std::string_view prefix, size_t limit,
                                                        size_t max_passed) const {
  // Outside the lock: a shard reporting takes its own lock, then this one.
  std::call_once(filled_, [this] {
    if (unfilled_.empty()) return;
    auto* self = const_cast<TotalTable*>(this);  // filling is not a change of what Top sees
    size_t parts = 0;
    for (Shard* shard : unfilled_) parts += shard->size();
    self->Reserve(parts);
    for (Shard* shard : unfilled_) shard->ReportTotalsTo(*self);
  });
  std::lock_guard lock(mutex_);
  if (out_of_range_ > 0) return std::nullopt;
  BuildRankIndexLocked();
  std::vector<CounterPart> top;
  size_t passed = 0;
  for (auto it = by_rank_.begin(); it != by_rank_.end() && top.size() < limit; ++it) {
    std::string_view name = arena_.Get(it->name);
    if (!name.starts_with(prefix)) {
      if (++passed > max_passed) return std::nullopt;
      continue;
    }
    top.push_back({std::string(name), it->count});
  }
  return top;
}

size_t TotalTable::size() const {
  std::lock_guard lock(mutex_);
  return by_hash_.size();
}

}  // namespace shardctl::core
