// KeyTable: the idempotency keys a shard remembers, each with the increment
// it first came with and the answer that got, for a window of time (24 hours
// by default) after it was first seen. It is what makes an increment with a
// key count at most once: a retry gets the first answer again, a key reused
// for another increment is refused, and so is a retry while the first is
// still being served. Thread-safe: keys live in lock stripes.
#ifndef SHARDCTL_CORE_KEY_TABLE_H_
#define SHARDCTL_CORE_KEY_TABLE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/record.h"
#include "core/shard_client.h"
#include "core/status.h"

namespace shardctl::core {

class KeyTable {
 public:
  // REQUIRES: window_seconds > 0.
  explicit KeyTable(int64_t window_seconds);
  KeyTable(const KeyTable&) = delete;
  KeyTable& operator=(const KeyTable&) = delete;

  int64_t window_seconds() const { return window_seconds_; }

  // Begins `request`, whose key is set, at time `now`:
  // - a key not seen within the window is reserved for this request; returns
  //   nullopt, and the caller applies the increment and then calls Applied
  //   and Finish, or Abandon if it did not apply it;
  // - a key answered before for the same increment (value, counter, window),
  //   or restored as "any value" for the same counter and window: returns
  //   that first answer;
  // - a key seen for a different increment: kKeyReused (HTTP 422);
  // - a key whose first request is still being served: kInProgress (HTTP 409).
  // REQUIRES: !request.idempotency_key.empty().
  Result<std::optional<IncrementReply>> Begin(const IncrementRequest& request, int64_t now);

  // Records the answer of the reserved key's increment once it is applied
  // (before it is durable: a snapshot taken from now on includes the key).
  void Applied(const std::string& key, const IncrementReply& reply);
  // The reserved key's increment is durable and answered: retries get its answer.
  void Finish(const std::string& key);
  // The reserved key's increment was not applied: forgets the key, so a
  // retry is served afresh.
  void Abandon(const std::string& key);

  // Remembers `request`'s key as answered with `reply`, first seen at `time`,
  // unless that is longer ago than the window (replay of a journal or snapshot).
  // With `any_value`, a later increment with the key answers `reply` whatever
  // its value, as long as its counter and window are request's
  // (Record::Kind::kAnyValueKey, after a reshard).
  void Restore(const IncrementRequest& request, int64_t time, const IncrementReply& reply,
               int64_t now, bool any_value = false);

  // Every applied key still within the window, as Record::Kind::kKey records
  // (kAnyValueKey for keys restored so; for a snapshot).
  std::vector<Record> Checkpoint(int64_t now) const;

  // Forgets keys first seen a window or more before `now`. Returns how many.
  size_t DropExpired(int64_t now);

  // How many keys it holds.
  size_t size() const;

 private:
  struct Entry {
    enum class State : uint8_t { kReserved, kApplied, kAnswered };
    int64_t value = 0;  // the increment, to tell a retry from a reused key
    CounterRef counter;
    int64_t time = 0;  // when the key was first seen
    IncrementReply reply;
    State state = State::kReserved;
    bool any_value = false;  // a retry's value is not compared (after a reshard)
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };
  struct Stripe {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>> entries;
  };
  static constexpr size_t kStripes = 16;

  Stripe& StripeOf(std::string_view key) { return stripes_[KeyHash{}(key) % kStripes]; }
  bool Expired(const Entry& entry, int64_t now) const {
    return entry.time + window_seconds_ <= now;
  }

  const int64_t window_seconds_;
  std::array<Stripe, kStripes> stripes_;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_KEY_TABLE_H_
