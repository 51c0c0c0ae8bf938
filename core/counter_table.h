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
#include <vector>

#include "core/counter_name.h"
#include "core/shard_client.h"

namespace shardctl::core {

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

  CounterTable();
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
  // the prefix, or the parts of higher rank without it).
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
  static constexpr uint32_t kNone = 0xFFFFFFFF;

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

  // A growable array in fixed chunks: indexes stay valid and growing never
  // copies what is there (no pause while a large table grows).
  template <typename T>
  class Chunked {
   public:
    T& operator[](uint32_t i) { return chunks_[i >> kShift][i & kMask]; }
    const T& operator[](uint32_t i) const { return chunks_[i >> kShift][i & kMask]; }
    // Returns the index of a new default element.
    uint32_t Add();
    uint32_t size() const { return size_; }

   private:
    static constexpr uint32_t kShift = 12;
    static constexpr uint32_t kMask = (1u << kShift) - 1;
    std::vector<std::unique_ptr<T[]>> chunks_;
    uint32_t size_ = 0;
  };

  // Names, each a length byte, its bytes and the index of its entry, in 1 MiB
  // chunks; a reference is chunk << 20 | offset. The indexes hold references,
  // so that comparing names reads one place. Space of a forgotten name is
  // reused by the next name of the same length.
  class Arena {
   public:
    uint32_t Add(std::string_view name, uint32_t entry);
    void Free(uint32_t ref);
    std::string_view Get(uint32_t ref) const {
      const char* at = At(ref);
      return {at + 1, static_cast<unsigned char>(*at)};
    }
    uint32_t EntryOf(uint32_t ref) const {
      const char* at = At(ref);
      uint32_t entry;
      std::memcpy(&entry, at + 1 + static_cast<unsigned char>(*at), sizeof entry);
      return entry;
    }

   private:
    static constexpr uint32_t kChunkBits = 20;
    static constexpr uint32_t kChunkBytes = 1u << kChunkBits;
    static constexpr uint32_t kOffsetMask = kChunkBytes - 1;
    static constexpr size_t kMaxChunks = size_t{1} << (31 - kChunkBits);
    const char* At(uint32_t ref) const {
      return chunks_[ref >> kChunkBits].get() + (ref & kOffsetMask);
    }
    std::vector<std::unique_ptr<char[]>> chunks_;
    uint32_t used_ = kChunkBytes;  // of the last chunk
    std::array<std::vector<uint32_t>, kMaxCounterNameBytes + 1> free_;
  };

  // Hashing and equality of name references by name, with lookup by name.
  struct NameHash {
    using is_transparent = void;
    const Arena* arena;
    size_t operator()(uint32_t ref) const;
    size_t operator()(std::string_view name) const;
  };
  struct NameEq {
    using is_transparent = void;
    const Arena* arena;
    bool operator()(uint32_t a, uint32_t b) const { return a == b; }
    bool operator()(uint32_t a, std::string_view b) const { return arena->Get(a) == b; }
    bool operator()(std::string_view a, uint32_t b) const { return a == arena->Get(b); }
  };
  // Name references by name.
  struct NameLess {
    using is_transparent = void;
    const Arena* arena;
    bool operator()(uint32_t a, uint32_t b) const { return arena->Get(a) < arena->Get(b); }
    bool operator()(uint32_t a, std::string_view b) const { return arena->Get(a) < b; }
    bool operator()(std::string_view a, uint32_t b) const { return a < arena->Get(b); }
  };
  // The rank order: count highest first, then name. A key carries the first
  // 8 bytes of its name as a number that sorts as they do, so that most ties
  // are settled without reading the names from the arena (misses in the
  // cache: the index is updated on every increment).
  struct RankKey {
    int64_t count;
    uint64_t head;  // NameHead(name)
    uint32_t name;  // its arena reference
  };
  struct RankProbe {
    int64_t count;
    uint64_t head;
    std::string_view name;
  };
  static uint64_t NameHead(std::string_view name);
  struct RankLess {
    using is_transparent = void;
    const CounterTable* table;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      if (a.count != b.count) return a.count > b.count;
      if (a.head != b.head) return a.head < b.head;
      return NameOf(a) < NameOf(b);
    }
    std::string_view NameOf(const RankKey& key) const { return table->arena_.Get(key.name); }
    std::string_view NameOf(const RankProbe& probe) const { return probe.name; }
  };
  RankKey RankKeyOf(uint32_t entry) const;

  std::string_view NameOf(uint32_t entry) const { return arena_.Get(entries_[entry].name); }
  uint32_t FindEntry(std::string_view name) const;
  // The part (entry, window); nullopt for none (or entry kNone).
  std::optional<Cell> CellOf(uint32_t entry, int64_t window) const;
  // Sets the part (entry, window), adding `name`'s entry if entry is kNone.
  void SetAt(uint32_t entry, std::string_view name, int64_t window, const Cell& cell);
  // Moves a plain part from `count` to its entry's count in the rank index.
  void Rerank(uint32_t entry, int64_t count);
  uint32_t AddEntry(std::string_view name);
  // Forgets the entry once it holds no part.
  void ReleaseIfEmpty(uint32_t entry);
  // The window cell of (entry, window), kNone if none.
  uint32_t FindWindow(uint32_t entry, int64_t window) const;
  void EraseWindow(uint32_t entry, uint32_t cell);
  void ErasePlain(uint32_t entry);
  // Files a window cell under the time its window ends.
  void FileExpiry(uint32_t cell);

  Arena arena_;
  Chunked<Entry> entries_;
  std::vector<uint32_t> free_entries_;
  Chunked<WindowCell> windows_;
  std::vector<uint32_t> free_windows_;
  absl::flat_hash_set<uint32_t, NameHash, NameEq> by_hash_;
  absl::btree_set<uint32_t, NameLess> by_name_;
  absl::btree_set<RankKey, RankLess> by_rank_;
  // Window cells by the end of their window; a cell may be filed under an
  // earlier end too (it moved on to a later window since): checked on drop.
  absl::btree_map<int64_t, std::vector<uint32_t>> expiry_;
  size_t plain_count_ = 0;
  size_t window_count_ = 0;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_COUNTER_TABLE_H_
