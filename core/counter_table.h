// CounterTable: the counters of one shard, kept compact. Each name is stored
// once, in an arena; a name's plain part sits in an entry (its count), its
// windowed parts in a pool of window cells linked from the entry. A hash index
// finds a name, and two ordered indexes hold the plain parts by name and by
// (count highest first, name), so a page in either order costs the page.
// Windowed parts are also filed by the time their window ends, so that ended
// windows are dropped a bounded slice at a time. Not thread-safe: its owner
// (core::Shard) locks it.
#ifndef SHARDCTL_CORE_COUNTER_TABLE_H_
#define SHARDCTL_CORE_COUNTER_TABLE_H_

#include <absl/container/btree_map.h>
#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_set.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/counter_name.h"
#include "core/name_arena.h"
#include "core/shard_client.h"

namespace shardctl::core {

// Told of every change to a table's plain parts (core/total_table.h keeps
// the totals of in-process shards so), while the table's owner holds its
// lock: a part went from `was` to `now`; `held` is +1 for a part the table
// did not hold before (`was` is 0), -1 for one it no longer holds (`now` is
// 0), 0 otherwise.
class PlainObserver {
 public:
  virtual ~PlainObserver() = default;
  virtual void OnPlainChange(std::string_view name, int64_t was, int64_t now, int held) = 0;
  // Around many changes in a row (a batch's share): the observer may hold
  // what each change would take and give back (its lock) for all of them.
  virtual void BeginChanges() {}
  virtual void EndChanges() {}
};

class CounterTable {
 public:
  // A part's count and, for a windowed part, the start of the window it counts.
  struct Cell {
    int64_t count = 0;
    int64_t window_start = 0;  // 0 for a plain part
    bool operator==(const Cell&) const = default;
  };
  // One part of a name: window 0 for the plain part.
  struct Part {
    int64_t window = 0;
    Cell cell;
    bool operator==(const Part&) const = default;
  };

  // `observer`, if not null, is told of every change to a plain part and
  // must outlive the table.
  explicit CounterTable(PlainObserver* observer = nullptr);
  // Its indexes point back into it: it stays where it was made.
  CounterTable(const CounterTable&) = delete;
  CounterTable& operator=(const CounterTable&) = delete;

  // The part (`name`, `window`), window 0 for the plain part; nullopt if the
  // table does not hold it.
  std::optional<Cell> Find(std::string_view name, int64_t window) const;
  // Sets the part (`name`, `window`) to `cell`, adding it if absent. Throws
  // std::length_error past 2 GiB of names in one table.
  // REQUIRES: `name` valid (core/counter_name.h), 0 <= window <= kMaxWindowSeconds.
  void Set(std::string_view name, int64_t window, const Cell& cell);
  // Finds the part and sets it to what `update(std::optional<Cell> found)`
  // returns, if it returns a Cell (nullopt: leave the table as it is); one
  // lookup for both. `update` must not touch the table. REQUIRES: as Set.
  template <typename F>
  void Update(std::string_view name, int64_t window, F&& update) {
    const uint32_t entry = FindEntry(name);
    if (std::optional<Cell> next = update(CellOf(entry, window))) {
      SetAt(entry, name, window, *next);
    }
  }
  // From now on tells `observer` (not null) of every change to a plain part,
  // instead of the observer it had; returns the plain parts it holds now
  // (name, count), so that the observer can start from them.
  std::vector<std::pair<std::string_view, int64_t>> Observe(PlainObserver* observer);

  // Tells the observer, if any, that many changes follow, until destroyed.
  class ChangeGroup {
   public:
    explicit ChangeGroup(const CounterTable& table) : observer_(table.observer_) {
      if (observer_) observer_->BeginChanges();
    }
    ~ChangeGroup() {
      if (observer_) observer_->EndChanges();
    }
    ChangeGroup(const ChangeGroup&) = delete;
    ChangeGroup& operator=(const ChangeGroup&) = delete;

   private:
    PlainObserver* const observer_;
  };

  // Removes the part; returns whether the table held it.
  bool Erase(std::string_view name, int64_t window);
  // Removes every part of `name` (plain and windows); returns them, the plain
  // part (if any) first. Costs the parts of that name, not the table.
  std::vector<Part> EraseName(std::string_view name);

  // Plain parts whose name starts with `prefix` and sorts after `after`
  // (bytewise), in name order, at most `limit`. Costs the page.
  std::vector<CounterPart> ListPage(std::string_view prefix, std::string_view after,
                                    size_t limit) const;
  // Plain parts in rank order (count highest first, ties by name ascending)
  // as RankQuery describes. Without a prefix it costs the page; with one,
  // the page plus what it passes over (at most about 8 x limit names with
  // the prefix, or the parts of higher rank without it). The rank index is
  // made by the first call (it costs sorting the plain parts, ~0.1 s at
  // 1,000,000) and kept from then on: a table nobody ranks spends nothing
  // on it (in one `serve`, leaderboards come from core/total_table.h).
  std::vector<CounterPart> Rank(const RankQuery& query) const;

  // Calls `fn(name, window, cell)` for every part (windows included), in no
  // particular order.
  void ForEach(const std::function<void(std::string_view, int64_t, const Cell&)>& fn) const;

  // Drops windowed parts whose window ended at `now` or before, looking at
  // most at `max_looked` of them. Returns how many it dropped and looked at,
  // and whether more may have ended (call again).
  struct Expired {
    size_t dropped = 0;
    size_t looked = 0;
    bool more = false;
  };
  Expired DropExpired(int64_t now, size_t max_looked);

  size_t plain_count() const { return plain_count_; }
  size_t window_count() const { return window_count_; }
  // How many parts it holds: plain and windows.
  size_t size() const { return plain_count_ + window_count_; }

 private:
  static constexpr uint32_t kNone = kNoIndex;

  // A name, and its plain part: an index into entries_. `name` refers into
  // the arena; `plain` says whether the name has a plain part (count).
  struct Entry {
    int64_t count = 0;
    uint32_t name : 31 = 0;
    uint32_t plain : 1 = 0;
    uint32_t windows = kNone;  // the first of its window cells, kNone for none
  };
  // A windowed part: an index into windows_; `entry` is kNone for a free cell.
  struct WindowCell {
    int64_t count = 0;
    int64_t start = 0;
    int32_t window = 0;
    uint32_t entry = kNone;
    uint32_t next = kNone;  // the next window cell of the same name
  };

  RankKey RankKeyOf(uint32_t entry) const;
  uint32_t EntryOf(uint32_t ref) const;  // the entry a name reference belongs to
  // Makes the rank index from the plain parts, if not made yet.
  void BuildRankIndex() const;

  std::string_view NameOf(uint32_t entry) const { return arena_.Get(entries_[entry].name); }
  uint32_t FindEntry(std::string_view name) const;
  // The part (entry, window); nullopt for none (or entry kNone).
  std::optional<Cell> CellOf(uint32_t entry, int64_t window) const;
  // Sets the part (entry, window), adding `name`'s entry if entry is kNone.
  void SetAt(uint32_t entry, std::string_view name, int64_t window, const Cell& cell);
  uint32_t AddEntry(std::string_view name);
  // Forgets the entry once it holds no part.
  void ReleaseIfEmpty(uint32_t entry);
  // The window cell of (entry, window), kNone if none.
  uint32_t FindWindow(uint32_t entry, int64_t window) const;
  void EraseWindow(uint32_t entry, uint32_t cell);
  void ErasePlain(uint32_t entry);
  // Files a window cell under the time its window ends.
  void FileExpiry(uint32_t cell);

  PlainObserver* observer_;
  NameArena arena_;  // each name's payload: the index of its entry
  ChunkedArray<Entry> entries_;
  std::vector<uint32_t> free_entries_;
  ChunkedArray<WindowCell> windows_;
  std::vector<uint32_t> free_windows_;
  absl::flat_hash_set<uint32_t, NameRefHash, NameRefEq> by_hash_;
  absl::btree_set<uint32_t, NameRefLess> by_name_;
  // Made on the first Rank() (by a const method, hence mutable: the owner's
  // lock covers it as it covers the rest).
  mutable absl::btree_set<RankKey, RankLess> by_rank_;
  mutable bool ranked_ = false;
  // Window cells by the end of their window; a cell may be filed under an
  // earlier end too (it moved on to a later window since): checked on drop.
  absl::btree_map<int64_t, std::vector<uint32_t>> expiry_;
  size_t plain_count_ = 0;
  size_t window_count_ = 0;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_COUNTER_TABLE_H_
