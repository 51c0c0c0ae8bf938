// The pieces a compact table of named counters is built from (core/counter_table.h for a shard's
// parts, core/total_table.h for the totals of in-process shards): names stored once in an arena
// and referred to by a 32-bit reference; hashing, equality and order of references by their names;
// the rank order (count highest first, then name); and a growable array that never moves what it
// holds. Not thread-safe: the tables lock.
#ifndef SHARDCTL_CORE_NAME_ARENA_H_
#define SHARDCTL_CORE_NAME_ARENA_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <string_view>
#include <vector>

#include "core/counter_name.h"

namespace shardctl::core {

inline constexpr uint32_t kNoIndex = 0xFFFFFFFF;

// A growable array in fixed chunks: indexes stay valid and growing never
// copies what is there (no pause while a large table grows).
template <typename T>
class ChunkedArray {
 public:
  T& operator[](uint32_t i) { return chunks_[i >> kShift][i & kMask]; }
  const T& operator[](uint32_t i) const { return chunks_[i >> kShift][i & kMask]; }
  // Returns the index of a new default element.
  uint32_t Add() {
    if ((size_ & kMask) == 0) chunks_.push_back(std::make_unique<T[]>(kMask + 1));
    (*this)[size_] = T{};
    return size_++;
  }
  uint32_t size() const { return size_; }

 private:
  static constexpr uint32_t kShift = 12;
  static constexpr uint32_t kMask = (1u << kShift) - 1;
  std::vector<std::unique_ptr<T[]>> chunks_;
  uint32_t size_ = 0;
};

// Names, each a length byte, its bytes and a payload of a fixed size (what
// the owning table keeps with the name: for a shard's table, the index of its
// entry), in 1 MiB chunks; a reference is chunk << 20 | offset, 31 bits at
// most. Space of a forgotten name is reused by the next name of the same
// length.
class NameArena {
 public:
  // REQUIRES: payload_bytes <= 64.
  explicit NameArena(uint32_t payload_bytes) : payload_bytes_(payload_bytes) {}

  // Stores `name` with a zeroed payload. Throws std::length_error past 2 GiB
  // of names.
  uint32_t Add(std::string_view name);
  void Free(uint32_t ref);
  std::string_view Get(uint32_t ref) const {
    const char* at = At(ref);
    return {at + 1, static_cast<unsigned char>(*at)};
  }
  // The payload of a name (unaligned: read and write it with memcpy).
  char* Payload(uint32_t ref) {
    char* at = chunks_[ref >> kChunkBits].get() + (ref & kOffsetMask);
    return at + 1 + static_cast<unsigned char>(*at);
  }
  const char* Payload(uint32_t ref) const {
    const char* at = At(ref);
    return at + 1 + static_cast<unsigned char>(*at);
  }

 private:
  static constexpr uint32_t kChunkBits = 20;
  static constexpr uint32_t kChunkBytes = 1u << kChunkBits;
  static constexpr uint32_t kOffsetMask = kChunkBytes - 1;
  static constexpr size_t kMaxChunks = size_t{1} << (31 - kChunkBits);
  const char* At(uint32_t ref) const {
    return chunks_[ref >> kChunkBits].get() + (ref & kOffsetMask);
  }
  const uint32_t payload_bytes_;
  std::vector<std::unique_ptr<char[]>> chunks_;
  uint32_t used_ = kChunkBytes;  // of the last chunk
  std::array<std::vector<uint32_t>, kMaxCounterNameBytes + 1> free_;
};

// Hashing and equality of name references by name, with lookup by name.
struct NameRefHash {
  using is_transparent = void;
  const NameArena* arena;
  size_t operator()(uint32_t ref) const;
  size_t operator()(std::string_view name) const;
};
struct NameRefEq {
  using is_transparent = void;
  const NameArena* arena;
  bool operator()(uint32_t a, uint32_t b) const { return a == b; }
  bool operator()(uint32_t a, std::string_view b) const { return arena->Get(a) == b; }
  bool operator()(std::string_view a, uint32_t b) const { return a == arena->Get(b); }
};
// Name references by name.
struct NameRefLess {
  using is_transparent = void;
  const NameArena* arena;
  bool operator()(uint32_t a, uint32_t b) const { return arena->Get(a) < arena->Get(b); }
  bool operator()(uint32_t a, std::string_view b) const { return arena->Get(a) < b; }
  bool operator()(std::string_view a, uint32_t b) const { return a < arena->Get(b); }
};

// The first 8 bytes of a name as a number that sorts as they do.
uint64_t NameHead(std::string_view name);

// The rank order: count highest first, then name. A key carries the first 8
// bytes of its name (NameHead), so that most ties are settled without reading
// the names from the arena (misses in the cache: a rank index is updated on
// every increment).
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
struct RankLess {
  using is_transparent = void;
  const NameArena* arena;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    if (a.count != b.count) return a.count > b.count;
    if (a.head != b.head) return a.head < b.head;
    return NameOf(a) < NameOf(b);
  }
  std::string_view NameOf(const RankKey& key) const { return arena->Get(key.name); }
  std::string_view NameOf(const RankProbe& probe) const { return probe.name; }
};

// Moves `key` of a rank index (a B-tree set ordered by count, then name)
// from the count `was` to key.count. Most increments leave a part between the
// same neighbours (a leader that stays ahead): then the key changes in place,
// without a second descent; the order of the index holds either way, so the
// cast is sound. REQUIRES: the index holds `key` with count `was`.
template <typename Index>
void MoveInRank(Index& index, typename Index::key_type key, int64_t was) {
  const int64_t now = key.count;
  key.count = was;
  auto it = index.find(key);
  key.count = now;
  const auto less = index.key_comp();
  auto next = std::next(it);
  if ((it == index.begin() || less(*std::prev(it), key)) &&
      (next == index.end() || less(key, *next))) {
    const_cast<typename Index::key_type&>(*it).count = now;
    return;
  }
  index.erase(it);
  index.insert(key);
}

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_NAME_ARENA_H_
