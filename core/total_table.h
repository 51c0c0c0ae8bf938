// TotalTable: the total of every plain counter over the shards of one process, kept in rank
// order (total highest first, then name), so that a leaderboard of in-process shards costs its
// K entries. Made from the shards when first asked for (FillOnFirstUse), or kept from the start
// by shards made with it; from then on each shard's CounterTable tells it of every change to a
// plain part (PlainObserver), under that shard's lock, so it holds at every moment the sum of
// the parts applied. Separate processes and the cluster have no such table: there,
// Aggregator::Top runs the threshold algorithm over the shards. Thread-safe (one lock, held for
// a lookup and an index update per change, or once for a batch's share).
#ifndef SHARDCTL_CORE_TOTAL_TABLE_H_
#define SHARDCTL_CORE_TOTAL_TABLE_H_

#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_set.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "core/counter_table.h"
#include "core/name_arena.h"
#include "core/shard_client.h"

namespace shardctl::core {

class Shard;

class TotalTable : public PlainObserver {
 public:
  TotalTable();
  TotalTable(const TotalTable&) = delete;
  TotalTable& operator=(const TotalTable&) = delete;

  void OnPlainChange(std::string_view name, int64_t was, int64_t now, int held) override;
  // Holds the lock from one to the other (changes in between take it again).
  void BeginChanges() override { mutex_.lock(); }
  void EndChanges() override { mutex_.unlock(); }
  // Fills itself from `shards` on the first Top (each shard's parts added,
  // then every change it makes told), not before: a process that is never
  // asked for a leaderboard spends no memory or start-up time on it. The
  // first Top costs reading every shard (about 0.3 s at 1,000,000 counters).
  // REQUIRES: the shards outlive the table's use, and were made without an
  // observer.
  void FillOnFirstUse(std::vector<Shard*> shards);

  // Adds one shard's plain parts (name, count) under one hold of the lock:
  // what a shard read back from its store holds (Shard::ReportTotalsTo).
  void AddParts(const std::vector<std::pair<std::string_view, int64_t>>& parts);

  // The `limit` highest totals of counters whose name starts with `prefix`,
  // highest first, ties by name ascending (as Aggregator::List's top), or
  // nullopt when this table cannot answer exactly and cheaply: some total
  // leaves int64, or more than `max_passed` names without the prefix rank
  // above the answer's last (ask the shards instead).
  std::optional<std::vector<CounterPart>> Top(std::string_view prefix, size_t limit,
                                              size_t max_passed) const;

  // How many counters it holds a total for.
  size_t size() const;

 private:
  // What the arena keeps with each name: its total in 128 bits (the low 64
  // as `low`, the rest in `carry`: parts fit in int64, so their sum needs
  // only a few more bits) and how many shards hold a part of it.
  struct Payload {
    uint64_t low;
    int16_t carry;
    uint16_t holders;
  };
  // A rank key of 12 bytes (a B-tree of them costs ~18 bytes a counter):
  // ties by name are settled in the arena.
#pragma pack(push, 4)
  struct Key {
    int64_t count;
    uint32_t name;
  };
#pragma pack(pop)
  struct Probe {
    int64_t count;
    std::string_view name;
  };
  struct Less {
    using is_transparent = void;
    const NameArena* arena;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      if (a.count != b.count) return a.count > b.count;
      return NameOf(a) < NameOf(b);
    }
    std::string_view NameOf(const Key& key) const { return arena->Get(key.name); }
    std::string_view NameOf(const Probe& probe) const { return probe.name; }
  };

  // Makes room for `names` counters at once (no growing step by step).
  void Reserve(size_t names);
  Payload PayloadOf(uint32_t ref) const;
  void ChangeLocked(std::string_view name, int64_t was, int64_t now, int held);
  void BuildRankIndexLocked() const;
  void SetPayload(uint32_t ref, const Payload& payload);

  // Recursive: taken again by each change within BeginChanges/EndChanges.
  mutable std::recursive_mutex mutex_;
  NameArena arena_;                                                // guarded by mutex_
  absl::flat_hash_set<uint32_t, NameRefHash, NameRefEq> by_hash_;  // guarded by mutex_
  // Every total that fits in int64, once made (by a const Top, hence
  // mutable); guarded by mutex_.
  mutable absl::btree_set<Key, Less> by_rank_;
  mutable bool ranked_ = false;
  // Set before any Top; read by Top's one fill.
  std::vector<Shard*> unfilled_;
  mutable std::once_flag filled_;
  size_t out_of_range_ = 0;  // totals that do not; guarded by mutex_
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_TOTAL_TABLE_H_
