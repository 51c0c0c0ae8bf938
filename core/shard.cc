#include "core/shard.h"

#include <fmt/format.h>

#include "core/counter.h"
#include "core/window.h"

namespace shardctl::core {

Shard::Shard(int id, NowFn now) : id_(id), now_(now ? std::move(now) : SystemNowSeconds) {}

std::string Shard::KeyOf(const CounterRef& counter) {
  if (counter.window == 0) return counter.name;
  return fmt::format("{}@{}", counter.name, counter.window);
}

Result<IncrementReply> Shard::Increment(const IncrementRequest& request) {
  const CounterRef& counter = request.counter;
  int64_t window_start = counter.window > 0 ? WindowStart(now_(), counter.window) : 0;
  // The default counter's key is its name; other keys are built once here.
  std::string windowed_key = counter.window > 0 ? KeyOf(counter) : std::string();
  std::string_view key = counter.window > 0 ? std::string_view(windowed_key) : counter.name;

  Stripe& stripe = StripeOf(key);
  std::lock_guard lock(stripe.mutex);
  auto it = stripe.cells.find(key);
  int64_t current = 0;
  if (it != stripe.cells.end() && it->second.window_start == window_start) {
    current = it->second.count;
  }
  Result<int64_t> next = CheckedAdd(current, request.value);
  if (!next.ok()) {
    return OutOfRange(
        fmt::format("shard {}: adding {} to the count {} of '{}' would overflow a 64-bit count",
                    id_, request.value, current, counter.name));
  }
  if (it == stripe.cells.end()) it = stripe.cells.emplace(std::string(key), Cell{}).first;
  it->second = {*next, counter.window, window_start};
  int64_t window_end = counter.window > 0 ? window_start + counter.window : 0;
  return IncrementReply{id_, *next, window_end};
}

CountReply Shard::Count(const CounterRef& counter) const {
  CountReply reply{id_, 0, 0};
  int64_t window_start = 0;
  if (counter.window > 0) {
    window_start = WindowStart(now_(), counter.window);
    reply.window_end = window_start + counter.window;
  }
  std::string key = KeyOf(counter);
  const Stripe& stripe = StripeOf(key);
  std::lock_guard lock(stripe.mutex);
  auto it = stripe.cells.find(key);
  if (it != stripe.cells.end() && it->second.window_start == window_start) {
    reply.count = it->second.count;
  }
  return reply;
}

std::vector<CounterPart> Shard::List(std::string_view prefix) const {
  std::vector<CounterPart> parts;
  for (const Stripe& stripe : stripes_) {
    std::lock_guard lock(stripe.mutex);
    for (const auto& [key, cell] : stripe.cells) {
      if (cell.window == 0 && key.starts_with(prefix)) parts.push_back({key, cell.count});
    }
  }
  return parts;
}

int64_t Shard::Reset(std::string_view name) {
  int64_t removed = 0;
  const std::string window_prefix = fmt::format("{}@", name);
  for (Stripe& stripe : stripes_) {
    std::lock_guard lock(stripe.mutex);
    std::erase_if(stripe.cells, [&](const auto& entry) {
      if (entry.first == name) {
        removed = entry.second.count;
        return true;
      }
      return entry.first.starts_with(window_prefix);
    });
  }
  return removed;
}

size_t Shard::DropExpiredWindows() {
  const int64_t now = now_();
  size_t dropped = 0;
  for (Stripe& stripe : stripes_) {
    std::lock_guard lock(stripe.mutex);
    dropped += std::erase_if(stripe.cells, [now](const auto& entry) {
      const Cell& cell = entry.second;
      return cell.window > 0 && cell.window_start + cell.window <= now;
    });
  }
  return dropped;
}

size_t Shard::size() const {
  size_t total = 0;
  for (const Stripe& stripe : stripes_) {
    std::lock_guard lock(stripe.mutex);
    total += stripe.cells.size();
  }
  return total;
}

std::string LocalShardClient::Describe() const {
  return fmt::format("shard {} (in process)", shard_.id());
}

}  // namespace shardctl::core
