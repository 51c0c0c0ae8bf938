#include "core/name_arena.h"

#include <absl/hash/hash.h>

#include <stdexcept>

namespace shardctl::core {

uint32_t NameArena::Add(std::string_view name) {
  std::vector<uint32_t>& reusable = free_[name.size()];
  uint32_t ref;
  if (!reusable.empty()) {
    ref = reusable.back();
    reusable.pop_back();
  } else {
    const uint32_t bytes = static_cast<uint32_t>(name.size() + 1 + payload_bytes_);
    if (used_ + bytes > kChunkBytes) {
      // A reference has 31 bits (the tables keep a flag beside it): 2 GiB of names.
      if (chunks_.size() == kMaxChunks) {
        throw std::length_error("a counter table holds at most 2 GiB of names");
      }
      // new char[] leaves the chunk's pages untouched until names fill them.
      chunks_.push_back(std::unique_ptr<char[]>(new char[kChunkBytes]));
      used_ = 0;
    }
    ref = static_cast<uint32_t>(chunks_.size() - 1) << kChunkBits | used_;
    used_ += bytes;
  }
  char* at = chunks_[ref >> kChunkBits].get() + (ref & kOffsetMask);
  at[0] = static_cast<char>(name.size());
  std::memcpy(at + 1, name.data(), name.size());
  std::memset(at + 1 + name.size(), 0, payload_bytes_);
  return ref;
}

void NameArena::Free(uint32_t ref) { free_[Get(ref).size()].push_back(ref); }

size_t NameRefHash::operator()(uint32_t ref) const {
  return absl::Hash<std::string_view>{}(arena->Get(ref));
}

size_t NameRefHash::operator()(std::string_view name) const {
  return absl::Hash<std::string_view>{}(name);
}

uint64_t NameHead(std::string_view name) {
  // Big-endian, zero-padded: compares as the bytes do (names hold no zero
  // byte, so a shorter name sorts first, as it does bytewise).
  uint64_t head = 0;
  for (size_t i = 0; i < 8; ++i) {
    head = head << 8 | (i < name.size() ? static_cast<unsigned char>(name[i]) : 0);
  }
  return head;
}

}  // namespace shardctl::core
