#include "core/counter_table.h"

#include <algorithm>
#include <cstring>

namespace shardctl::core {

RankKey CounterTable::RankKeyOf(uint32_t entry) const {
  const Entry& e = entries_[entry];
  return {e.count, NameHead(arena_.Get(e.name)), e.name};
}

uint32_t CounterTable::EntryOf(uint32_t ref) const {
  uint32_t entry;
  std::memcpy(&entry, arena_.Payload(ref), sizeof entry);
  return entry;
}

CounterTable::CounterTable(PlainObserver* observer)
    : observer_(observer),
      arena_(sizeof(uint32_t)),
      by_hash_(0, NameRefHash{&arena_}, NameRefEq{&arena_}),
      by_name_(NameRefLess{&arena_}),
      by_rank_(RankLess{&arena_}) {}

uint32_t CounterTable::FindEntry(std::string_view name) const {
  auto it = by_hash_.find(name);
  return it == by_hash_.end() ? kNone : EntryOf(*it);
}

uint32_t CounterTable::AddEntry(std::string_view name) {
  uint32_t entry;
  if (!free_entries_.empty()) {
    entry = free_entries_.back();
    free_entries_.pop_back();
    entries_[entry] = Entry{};
  } else {
    entry = entries_.Add();
  }
  const uint32_t ref = arena_.Add(name);
  std::memcpy(arena_.Payload(ref), &entry, sizeof entry);
  entries_[entry].name = ref;
  by_hash_.insert(ref);
  return entry;
}

void CounterTable::ReleaseIfEmpty(uint32_t entry) {
  Entry& e = entries_[entry];
  if (e.plain || e.windows != kNone) return;
  by_hash_.erase(e.name);  // hashes the name: forget it after
  arena_.Free(e.name);
  free_entries_.push_back(entry);
}

uint32_t CounterTable::FindWindow(uint32_t entry, int64_t window) const {
  for (uint32_t cell = entries_[entry].windows; cell != kNone; cell = windows_[cell].next) {
    if (windows_[cell].window == window) return cell;
  }
  return kNone;
}

void CounterTable::FileExpiry(uint32_t cell) {
  const WindowCell& w = windows_[cell];
  expiry_[w.start + w.window].push_back(cell);
}

std::optional<CounterTable::Cell> CounterTable::Find(std::string_view name, int64_t window) const {
  return CellOf(FindEntry(name), window);
}

std::optional<CounterTable::Cell> CounterTable::CellOf(uint32_t entry, int64_t window) const {
  if (entry == kNone) return std::nullopt;
  if (window == 0) {
    const Entry& e = entries_[entry];
    if (!e.plain) return std::nullopt;
    return Cell{e.count, 0};
  }
  const uint32_t cell = FindWindow(entry, window);
  if (cell == kNone) return std::nullopt;
  return Cell{windows_[cell].count, windows_[cell].start};
}

void CounterTable::Set(std::string_view name, int64_t window, const Cell& cell) {
  SetAt(FindEntry(name), name, window, cell);
}

void CounterTable::SetAt(uint32_t entry, std::string_view name, int64_t window,
                         const Cell& cell) {
  if (entry == kNone) entry = AddEntry(name);
  if (window == 0) {
    Entry& e = entries_[entry];
    if (!e.plain) {
      e.plain = 1;
      e.count = cell.count;
      by_name_.insert(e.name);
      if (ranked_) by_rank_.insert(RankKeyOf(entry));
      ++plain_count_;
      if (observer_) observer_->OnPlainChange(name, 0, cell.count, +1);
    } else if (e.count != cell.count) {
      const int64_t was = e.count;
      e.count = cell.count;
      if (ranked_) MoveInRank(by_rank_, RankKeyOf(entry), was);
      if (observer_) observer_->OnPlainChange(name, was, cell.count, 0);
    }
    return;
  }
  uint32_t at = FindWindow(entry, window);
  if (at == kNone) {
    if (!free_windows_.empty()) {
      at = free_windows_.back();
      free_windows_.pop_back();
    } else {
      at = windows_.Add();
    }
    windows_[at] = {cell.count, cell.window_start, static_cast<int32_t>(window), entry,
                    entries_[entry].windows};
    entries_[entry].windows = at;
    ++window_count_;
    FileExpiry(at);
    return;
  }
  WindowCell& w = windows_[at];
  w.count = cell.count;
  if (w.start != cell.window_start) {
    w.start = cell.window_start;
    FileExpiry(at);
  }
}

void CounterTable::ErasePlain(uint32_t entry) {
  Entry& e = entries_[entry];
  if (ranked_) by_rank_.erase(RankKeyOf(entry));
  by_name_.erase(e.name);
  if (observer_) observer_->OnPlainChange(arena_.Get(e.name), e.count, 0, -1);
  e.plain = 0;
  e.count = 0;
  --plain_count_;
}

void CounterTable::EraseWindow(uint32_t entry, uint32_t cell) {
  uint32_t* link = &entries_[entry].windows;
  while (*link != cell) link = &windows_[*link].next;
  *link = windows_[cell].next;
  windows_[cell] = WindowCell{};
  free_windows_.push_back(cell);
  --window_count_;
}

bool CounterTable::Erase(std::string_view name, int64_t window) {
  const uint32_t entry = FindEntry(name);
  if (entry == kNone) return false;
  if (window == 0) {
    if (!entries_[entry].plain) return false;
    ErasePlain(entry);
  } else {
    const uint32_t cell = FindWindow(entry, window);
    if (cell == kNone) return false;
    EraseWindow(entry, cell);
  }
  ReleaseIfEmpty(entry);
  return true;
}

std::vector<CounterTable::Part> CounterTable::EraseName(std::string_view name) {
  std::vector<Part> parts;
  const uint32_t entry = FindEntry(name);
  if (entry == kNone) return parts;
  if (entries_[entry].plain) {
    parts.push_back({0, {entries_[entry].count, 0}});
    ErasePlain(entry);
  }
  while (entries_[entry].windows != kNone) {
    const uint32_t cell = entries_[entry].windows;
    parts.push_back({windows_[cell].window, {windows_[cell].count, windows_[cell].start}});
    EraseWindow(entry, cell);
  }
  ReleaseIfEmpty(entry);
  return parts;
}

std::vector<CounterPart> CounterTable::ListPage(std::string_view prefix, std::string_view after,
                                                size_t limit) const {
  std::vector<CounterPart> page;
  auto it = after < prefix ? by_name_.lower_bound(prefix) : by_name_.upper_bound(after);
  for (; it != by_name_.end() && page.size() < limit; ++it) {
    std::string_view name = arena_.Get(*it);
    if (!name.starts_with(prefix)) break;
    page.push_back({std::string(name), entries_[EntryOf(*it)].count});
  }
  return page;
}

std::vector<CounterPart> CounterTable::Rank(const RankQuery& query) const {
  std::vector<CounterPart> page;
  if (query.limit == 0) return page;
  // Whether a part comes after the cursor (the cursor's own name never
  // does, wherever its count has moved it since).
  auto after_cursor = [&](int64_t count, std::string_view name) {
    if (query.from_start) return true;
    if (name == query.after.name) return false;
    return count != query.after.count ? count < query.after.count : name > query.after.name;
  };
  if (!query.prefix.empty()) {
    // Few names with the prefix: rank just those (by the name index), rather
    // than walk the rank order past every other name.
    const size_t few = 8 * query.limit + 64;
    std::vector<RankKey> matches;
    auto it = by_name_.lower_bound(std::string_view(query.prefix));
    for (; it != by_name_.end() && matches.size() <= few; ++it) {
      if (!arena_.Get(*it).starts_with(query.prefix)) break;
      matches.push_back(RankKeyOf(EntryOf(*it)));
    }
    if (matches.size() <= few) {
      std::erase_if(matches, [&](const RankKey& key) {
        return !after_cursor(key.count, arena_.Get(key.name));
      });
      const size_t n = std::min(matches.size(), query.limit);
      std::partial_sort(matches.begin(), matches.begin() + static_cast<ptrdiff_t>(n), matches.end(),
                        RankLess{&arena_});
      for (size_t i = 0; i < n; ++i) {
        page.push_back({std::string(arena_.Get(matches[i].name)), matches[i].count});
      }
      return page;
    }
  }
  BuildRankIndex();
  auto it = query.from_start
                ? by_rank_.begin()
                : by_rank_.upper_bound(RankProbe{query.after.count, NameHead(query.after.name),
                                                 query.after.name});
  for (; it != by_rank_.end() && page.size() < query.limit; ++it) {
    std::string_view name = arena_.Get(it->name);
    if (!name.starts_with(query.prefix) || !after_cursor(it->count, name)) continue;
    page.push_back({std::string(name), it->count});
  }
  return page;
}

void CounterTable::BuildRankIndex() const {
  if (ranked_) return;
  std::vector<RankKey> keys;
  keys.reserve(plain_count_);
  for (uint32_t entry = 0; entry < entries_.size(); ++entry) {
    if (entries_[entry].plain) keys.push_back(RankKeyOf(entry));
  }
  std::sort(keys.begin(), keys.end(), RankLess{&arena_});
  // In order, each at the end: absl's B-tree then leaves its nodes full.
  for (const RankKey& key : keys) by_rank_.insert(by_rank_.end(), key);
  ranked_ = true;
}

std::vector<std::pair<std::string_view, int64_t>> CounterTable::Observe(PlainObserver* observer) {
  observer_ = observer;
  std::vector<std::pair<std::string_view, int64_t>> parts;
  parts.reserve(plain_count_);
  for (uint32_t entry = 0; entry < entries_.size(); ++entry) {
    if (entries_[entry].plain) parts.emplace_back(NameOf(entry), entries_[entry].count);
  }
  return parts;
}

void CounterTable::ForEach(
    const std::function<void(std::string_view, int64_t, const Cell&)>& fn) const {
  for (uint32_t entry = 0; entry < entries_.size(); ++entry) {
    const Entry& e = entries_[entry];
    if (e.plain) fn(NameOf(entry), 0, {e.count, 0});
    for (uint32_t cell = e.windows; cell != kNone; cell = windows_[cell].next) {
      fn(NameOf(entry), windows_[cell].window, {windows_[cell].count, windows_[cell].start});
    }
  }
}

CounterTable::Expired CounterTable::DropExpired(int64_t now, size_t max_looked) {
  Expired expired;
  while (!expiry_.empty() && expiry_.begin()->first <= now) {
    std::vector<uint32_t>& due = expiry_.begin()->second;
    while (!due.empty()) {
      if (expired.looked == max_looked) {
        expired.more = true;
        return expired;
      }
      const uint32_t cell = due.back();
      due.pop_back();
      ++expired.looked;
      const WindowCell& w = windows_[cell];
      // A free cell, or one counting a later window now (filed again under
      // that window's end): nothing to drop.
      if (w.entry == kNone || w.start + w.window > now) continue;
      const uint32_t entry = w.entry;
      EraseWindow(entry, cell);
      ReleaseIfEmpty(entry);
      ++expired.dropped;
    }
    expiry_.erase(expiry_.begin());
  }
  return expired;
}

}  // namespace shardctl::core
