#include "core/key_table.h"

#include <cassert>

#include <fmt/format.h>

#include "core/protocol.h"

namespace shardctl::core {

KeyTable::KeyTable(int64_t window_seconds) : window_seconds_(window_seconds) {
  assert(window_seconds > 0);
}

Result<std::optional<IncrementReply>> KeyTable::Begin(const IncrementRequest& request,
                                                      int64_t now) {
  const std::string& key = request.idempotency_key;
  assert(!key.empty());
  Stripe& stripe = StripeOf(key);
  std::lock_guard lock(stripe.mutex);
  auto [it, inserted] = stripe.entries.try_emplace(key);
  Entry& entry = it->second;
  if (inserted || (entry.state == Entry::State::kAnswered && Expired(entry, now))) {
    entry = {request.value, request.counter, now, {}, Entry::State::kReserved};
    return std::optional<IncrementReply>();
  }
  if ((!entry.any_value && entry.value != request.value) || entry.counter != request.counter) {
    IncrementRequest first{entry.value, entry.counter, {}};
    return Status(Code::kKeyReused,
                  fmt::format("the Idempotency-Key \"{}\" was already used for another increment, "
                              "{}; send a new key with a new increment",
                              key, FormatIncrementRequest(first)));
  }
  if (entry.state != Entry::State::kAnswered) {
    return Status(Code::kInProgress,
                  fmt::format("the increment with the Idempotency-Key \"{}\" is still being "
                              "served; retry it shortly to get its answer",
                              key));
  }
  return std::optional<IncrementReply>(entry.reply);
}

void KeyTable::Applied(const std::string& key, const IncrementReply& reply) {
  Stripe& stripe = StripeOf(key);
  std::lock_guard lock(stripe.mutex);
  auto it = stripe.entries.find(key);
  if (it == stripe.entries.end()) return;
  it->second.reply = reply;
  it->second.state = Entry::State::kApplied;
}

void KeyTable::Finish(const std::string& key) {
  Stripe& stripe = StripeOf(key);
  std::lock_guard lock(stripe.mutex);
  auto it = stripe.entries.find(key);
  if (it != stripe.entries.end()) it->second.state = Entry::State::kAnswered;
}

void KeyTable::Abandon(const std::string& key) {
  Stripe& stripe = StripeOf(key);
  std::lock_guard lock(stripe.mutex);
  stripe.entries.erase(key);
}

void KeyTable::Restore(const IncrementRequest& request, int64_t time, const IncrementReply& reply,
                       int64_t now, bool any_value) {
  Entry entry{request.value, request.counter, time, reply, Entry::State::kAnswered, any_value};
  if (Expired(entry, now)) return;
  Stripe& stripe = StripeOf(request.idempotency_key);
  std::lock_guard lock(stripe.mutex);
  stripe.entries.insert_or_assign(request.idempotency_key, std::move(entry));
}

std::vector<Record> KeyTable::Checkpoint(int64_t now) const {
  std::vector<Record> records;
  for (const Stripe& stripe : stripes_) {
    std::lock_guard lock(stripe.mutex);
    for (const auto& [key, entry] : stripe.entries) {
      // A reserved key's increment is not in the journal yet: it will be
      // journaled after the snapshot's point, with its key.
      if (entry.state == Entry::State::kReserved || Expired(entry, now)) continue;
      int64_t window = entry.counter.window;
      records.push_back({.kind = entry.any_value ? Record::Kind::kAnyValueKey : Record::Kind::kKey,
                         .name = entry.counter.name,
                         .window = window,
                         .window_start = window > 0 ? entry.reply.window_end - window : 0,
                         .amount = entry.any_value ? 0 : entry.value,
                         .key = key,
                         .key_time = entry.time,
                         .count = entry.reply.count});
    }
  }
  return records;
}

size_t KeyTable::DropExpired(int64_t now) {
  size_t dropped = 0;
  for (Stripe& stripe : stripes_) {
    std::lock_guard lock(stripe.mutex);
    // A key still being served stays: its answer is on its way.
    dropped += std::erase_if(stripe.entries, [&](const auto& item) {
      return item.second.state == Entry::State::kAnswered && Expired(item.second, now);
    });
  }
  return dropped;
}

size_t KeyTable::size() const {
  size_t total = 0;
  for (const Stripe& stripe : stripes_) {
    std::lock_guard lock(stripe.mutex);
    total += stripe.entries.size();
  }
  return total;
}

}  // namespace shardctl::core
