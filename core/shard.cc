#include "core/shard.h"

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "core/counter.h"
#include "core/durable_batch.h"
#include "core/window.h"

namespace shardctl::core {
namespace {

Status JournalFailure(int shard_id, const Status& status, std::string_view what) {
  return Internal(fmt::format("shard {} could not make the {} durable, so it was not applied: {}",
                              shard_id, what, status.message()));
}

// A journal's kTimeout: the record is written here, but whether it reached
// the shard's followers is unknown (core/journal.h). Nothing is undone.
bool Unconfirmed(const Status& written) { return written.code() == Code::kTimeout; }

// A batch share's fingerprint, which its idempotency key remembers in place
// of a value: FNV-1a over its packed items and its window.
int64_t Fingerprint(std::string_view items, int64_t window) {
  uint64_t hash = 0xcbf29ce484222325u;
  auto mix = [&hash](uint8_t byte) {
    hash ^= byte;
    hash *= 0x100000001b3u;
  };
  for (char byte : items) mix(static_cast<uint8_t>(byte));
  for (int shift = 0; shift < 64; shift += 8) {
    mix(static_cast<uint8_t>(static_cast<uint64_t>(window) >> shift));
  }
  return static_cast<int64_t>(hash);
}

}  // namespace

Shard::Shard(int id, NowFn now, Journal* journal, int64_t key_window_seconds, PlainObserver* totals)
    : id_(id),
      now_(now ? std::move(now) : SystemNowSeconds),
      journal_(journal),
      table_(totals),
      keys_(key_window_seconds) {}

std::variant<Result<IncrementReply>, Shard::Pending> Shard::Apply(
    const IncrementRequest& request) {
  const CounterRef& counter = request.counter;
  const std::string& idempotency_key = request.idempotency_key;
  const bool keyed = !idempotency_key.empty();
  const int64_t now = keyed || counter.window > 0 ? now_() : 0;
  if (keyed) {
    Result<std::optional<IncrementReply>> begun = keys_.Begin(request, now);
    if (!begun.ok()) {
      return Result<IncrementReply>(
          Status(begun.status().code(), fmt::format("shard {}: {}", id_, begun.status().message())));
    }
    if (begun->has_value()) {  // a retry: the first answer
      key_replays_.fetch_add(1, std::memory_order_relaxed);
      return Result<IncrementReply>(**begun);
    }
  }
  Pending pending;
  pending.keyed = keyed;
  pending.window_start = counter.window > 0 ? WindowStart(now, counter.window) : 0;
  pending.value = request.value;
  pending.counter = counter;
  pending.reply = {id_, 0, counter.window > 0 ? pending.window_start + counter.window : 0};
  {
    std::lock_guard lock(mutex_);
    int64_t current = 0;
    Result<int64_t> next = 0;
    table_.Update(counter.name, counter.window, [&](std::optional<CounterTable::Cell> cell) {
      pending.created = !cell || cell->window_start != pending.window_start;
      if (!pending.created) current = cell->count;
      next = CheckedAdd(current, request.value);
      return next.ok() ? std::optional(CounterTable::Cell{*next, pending.window_start})
                       : std::nullopt;
    });
    if (!next.ok()) {
      if (keyed) keys_.Abandon(idempotency_key);
      return Result<IncrementReply>(OutOfRange(
          fmt::format("shard {}: adding {} to the count {} of '{}' would overflow a 64-bit count",
                      id_, request.value, current, counter.name)));
    }
    pending.reply.count = *next;
    // Under the lock, so that a checkpoint sees the key with the
    // change it answers.
    if (keyed) keys_.Applied(idempotency_key, pending.reply);
    // Appended under the lock, so one counter's records keep its order.
    // The key goes in the same record: the change and the key that guards it
    // are durable together or not at all.
    if (journal_ != nullptr) {
      pending.ticket = journal_->Append({.kind = Record::Kind::kAdd,
                                         .name = counter.name,
                                         .window = counter.window,
                                         .window_start = pending.window_start,
                                         .amount = request.value,
                                         .key = idempotency_key,
                                         .key_time = keyed ? now : 0,
                                         .count = keyed ? *next : 0});
    }
  }
  if (keyed) pending.idempotency_key = idempotency_key;
  applied_.fetch_add(1, std::memory_order_relaxed);
  return pending;
}

Result<IncrementReply> Shard::Complete(const Pending& pending, const Status& written) {
  if (!written.ok()) {
    if (Unconfirmed(written)) {
      // Written here, its replication unknown: the change stands, and a
      // retry with the key gets this answer wherever the change is.
      if (pending.keyed) keys_.Finish(pending.idempotency_key);
      return written;
    }
    Undo(pending.counter, pending.window_start, pending.value, pending.created);
    if (pending.keyed) keys_.Abandon(pending.idempotency_key);
    undone_records_.fetch_add(1, std::memory_order_acq_rel);
    return JournalFailure(id_, written, "increment");
  }
  if (pending.keyed) keys_.Finish(pending.idempotency_key);
  return pending.reply;
}

Result<IncrementReply> Shard::Increment(const IncrementRequest& request) {
  auto applied = Apply(request);
  if (auto* done = std::get_if<Result<IncrementReply>>(&applied)) return std::move(*done);
  Pending& pending = std::get<Pending>(applied);
  if (!pending.ticket) return Complete(pending, Status());
  // A keyed increment finishes its key only once durable, so it always
  // waits here; others may leave the wait to the thread's DurableBatch.
  if (DurableBatch* batch = DurableBatch::Active(); batch != nullptr && !pending.keyed) {
    batch->Defer(journal_, std::move(pending.ticket),
                 [this, counter = pending.counter, window_start = pending.window_start,
                  value = pending.value, created = pending.created](const Status& written) {
                   if (Unconfirmed(written)) return written;  // the change stands
                   Undo(counter, window_start, value, created);
                   undone_records_.fetch_add(1, std::memory_order_acq_rel);
                   return JournalFailure(id_, written, "increment");
                 });
    return pending.reply;
  }
  return Complete(pending, journal_->Wait(pending.ticket));
}

void Shard::IncrementThen(const IncrementRequest& request, IncrementDone done) {
  auto applied = Apply(request);
  if (auto* now = std::get_if<Result<IncrementReply>>(&applied)) {
    done(std::move(*now));
    return;
  }
  auto pending = std::make_shared<Pending>(std::move(std::get<Pending>(applied)));
  if (!pending->ticket) {
    done(Complete(*pending, Status()));
    return;
  }
  journal_->WaitThen(pending->ticket, [this, pending, done = std::move(done)](Status written) {
    done(Complete(*pending, written));
  });
}

Result<ManyReply> Shard::IncrementMany(const ManyRequest& request) {
  const std::string& idempotency_key = request.idempotency_key;
  const bool keyed = !idempotency_key.empty();
  const int64_t window = request.window;
  const int64_t now = keyed || window > 0 ? now_() : 0;
  const int64_t window_start = window > 0 ? WindowStart(now, window) : 0;
  const auto items = static_cast<int64_t>(request.items.size());
  const ManyReply reply{id_, items, window > 0 ? window_start + window : 0};
  // The journal record (and the key's fingerprint) is packed before the
  // lock is taken.
  Record group;
  group.kind = Record::Kind::kGroup;
  group.window = window;
  group.window_start = window_start;
  if (keyed || journal_ != nullptr) {
    std::string_view previous;
    for (const ManyRequest::Item& item : request.items) {
      PackGroupItem(previous, item.counter, item.value, &group.items);
      previous = item.counter;
    }
    group.amount = Fingerprint(group.items, window);
  }
  if (keyed) {
    // The key table knows the share as an increment of its fingerprint to
    // a counter no request can name.
    IncrementRequest as_increment{group.amount, {std::string(), window}, idempotency_key};
    Result<std::optional<IncrementReply>> begun = keys_.Begin(as_increment, now);
    if (!begun.ok()) {
      const bool reused = begun.status().code() == Code::kKeyReused;
      return Status(begun.status().code(),
                    reused ? fmt::format("shard {}: the Idempotency-Key \"{}\" was already used "
                                         "for another increment or batch; send a new key with a "
                                         "new batch",
                                         id_, idempotency_key)
                           : fmt::format("shard {}: {}", id_, begun.status().message()));
    }
    if (begun->has_value()) {  // a retry: the first answer
      key_replays_.fetch_add(1, std::memory_order_relaxed);
      return ManyReply{id_, (*begun)->count, (*begun)->window_end};
    }
  }
  std::vector<bool> created(request.items.size());
  std::shared_ptr<Journal::Ticket> ticket;
  {
    std::lock_guard lock(mutex_);
    // One hold of the process's totals for the share, not one per item.
    CounterTable::ChangeGroup changes(table_);
    for (size_t i = 0; i < request.items.size(); ++i) {
      const ManyRequest::Item& item = request.items[i];
      int64_t current = 0;
      Result<int64_t> next = 0;
      bool made = false;
      table_.Update(item.counter, window, [&](std::optional<CounterTable::Cell> cell) {
        made = !cell || cell->window_start != window_start;
        if (!made) current = cell->count;
        next = CheckedAdd(current, item.value);
        return next.ok() ? std::optional(CounterTable::Cell{*next, window_start}) : std::nullopt;
      });
      if (!next.ok()) {
        UndoManyLocked(request, i, window_start, created);
        if (keyed) keys_.Abandon(idempotency_key);
        return OutOfRange(fmt::format(
            "shard {}: adding {} to the count {} of '{}' would overflow a 64-bit count; nothing "
            "of the batch's share was counted",
            id_, item.value, current, item.counter));
      }
      created[i] = made;
    }
    if (keyed) keys_.Applied(idempotency_key, {id_, items, reply.window_end});
    if (journal_ != nullptr) {
      if (keyed) {
        group.key = idempotency_key;
        group.key_time = now;
        group.count = items;
      }
      ticket = journal_->Append(group);
    }
  }
  applied_.fetch_add(1, std::memory_order_relaxed);
  const Status written = ticket ? journal_->Wait(ticket) : Status();
  if (!written.ok() && !Unconfirmed(written)) {
    {
      std::lock_guard lock(mutex_);
      UndoManyLocked(request, request.items.size(), window_start, created);
    }
    if (keyed) keys_.Abandon(idempotency_key);
    undone_records_.fetch_add(1, std::memory_order_acq_rel);
    return JournalFailure(id_, written, "batch");
  }
  // Written (its replication perhaps unknown: the change stands).
  if (keyed) keys_.Finish(idempotency_key);
  if (!written.ok()) return written;
  return reply;
}

void Shard::UndoManyLocked(const ManyRequest& request, size_t count, int64_t window_start,
                           const std::vector<bool>& created) {
  for (size_t i = count; i-- > 0;) {
    const ManyRequest::Item& item = request.items[i];
    UndoLocked({item.counter, request.window}, window_start, item.value, created[i]);
  }
}

void Shard::Undo(const CounterRef& counter, int64_t window_start, int64_t amount,
                 bool created) {
  std::lock_guard lock(mutex_);
  UndoLocked(counter, window_start, amount, created);
}

void Shard::UndoLocked(const CounterRef& counter, int64_t window_start, int64_t amount,
                       bool created) {
  std::optional<CounterTable::Cell> cell = table_.Find(counter.name, counter.window);
  if (!cell || cell->window_start != window_start) return;
  // Other changes may have come since, but additions commute: taking this one
  // back leaves exactly what the journal holds.
  Result<int64_t> undone = CheckedAdd(cell->count, -amount);
  if (!undone.ok()) return;
  if (created && *undone == 0) {
    table_.Erase(counter.name, counter.window);
  } else {
    table_.Set(counter.name, counter.window, {*undone, window_start});
  }
}

CountReply Shard::Count(const CounterRef& counter) const {
  CountReply reply{id_, 0, 0};
  int64_t window_start = 0;
  if (counter.window > 0) {
    window_start = WindowStart(now_(), counter.window);
    reply.window_end = window_start + counter.window;
  }
  std::lock_guard lock(mutex_);
  std::optional<CounterTable::Cell> cell = table_.Find(counter.name, counter.window);
  if (cell && cell->window_start == window_start) reply.count = cell->count;
  return reply;
}

std::vector<CounterPart> Shard::List(std::string_view prefix) const {
  // Page by page, so that listing a large shard never holds the lock long.
  constexpr size_t kPage = 4096;
  std::vector<CounterPart> parts;
  for (;;) {
    const size_t had = parts.size();
    {
      std::lock_guard lock(mutex_);
      std::vector<CounterPart> page =
          table_.ListPage(prefix, parts.empty() ? std::string_view() : parts.back().name, kPage);
      parts.insert(parts.end(), std::make_move_iterator(page.begin()),
                   std::make_move_iterator(page.end()));
    }
    if (parts.size() - had < kPage) return parts;
  }
}

std::vector<CounterPart> Shard::ListPage(const PageQuery& query) const {
  std::lock_guard lock(mutex_);
  return table_.ListPage(query.prefix, query.after, query.limit);
}

std::vector<CounterPart> Shard::Rank(const RankQuery& query) const {
  std::lock_guard lock(mutex_);
  return table_.Rank(query);
}

std::vector<int64_t> Shard::Counts(const std::vector<std::string>& names) const {
  std::vector<int64_t> counts;
  counts.reserve(names.size());
  std::lock_guard lock(mutex_);
  for (const std::string& name : names) {
    std::optional<CounterTable::Cell> cell = table_.Find(name, 0);
    counts.push_back(cell ? cell->count : 0);
  }
  return counts;
}

Result<int64_t> Shard::Reset(std::string_view name) {
  struct Removed {
    CounterTable::Part part;
    std::shared_ptr<Journal::Ticket> ticket;
  };
  std::vector<Removed> removed;
  {
    std::lock_guard lock(mutex_);
    for (const CounterTable::Part& part : table_.EraseName(name)) {
      std::shared_ptr<Journal::Ticket> ticket;
      if (journal_ != nullptr) {
        ticket = journal_->Append({Record::Kind::kRemove, std::string(name), part.window,
                                   part.cell.window_start, -part.cell.count});
      }
      removed.push_back({part, std::move(ticket)});
    }
  }

  int64_t plain = 0;
  Status failure;
  for (const Removed& entry : removed) {
    const CounterTable::Part& part = entry.part;
    if (entry.ticket) {
      if (Status written = journal_->Wait(entry.ticket); !written.ok()) {
        failure = written;
        if (Unconfirmed(written)) continue;  // the removal stands
        // Put the part back: its removal is not in the journal.
        std::lock_guard lock(mutex_);
        CounterTable::Cell cell = table_.Find(name, part.window).value_or(CounterTable::Cell{});
        if (cell.window_start == part.cell.window_start || cell.count == 0) {
          Result<int64_t> restored = CheckedAdd(cell.count, part.cell.count);
          table_.Set(name, part.window,
                     {restored.ok() ? *restored : cell.count, part.cell.window_start});
        }
        undone_records_.fetch_add(1, std::memory_order_acq_rel);
        continue;
      }
    }
    if (part.window == 0) plain = part.cell.count;
  }
  if (Unconfirmed(failure)) return failure;
  if (!failure.ok()) return JournalFailure(id_, failure, "reset");
  return plain;
}

Status Shard::Replay(const Record& record) {
  CounterRef counter{record.name, record.window};
  if (!record.key.empty()) {
    IncrementReply reply{id_, record.count,
                         record.window > 0 ? record.window_start + record.window : 0};
    const bool any_value = record.kind == Record::Kind::kAnyValueKey;
    keys_.Restore({record.amount, counter, record.key}, record.key_time, reply, now_(), any_value);
  }
  if (record.kind == Record::Kind::kKey || record.kind == Record::Kind::kAnyValueKey) return {};
  if (record.kind == Record::Kind::kGroup) {
    Result<std::vector<Record>> increments = GroupIncrements(record);
    if (!increments.ok()) return increments.status();
    std::lock_guard lock(mutex_);
    for (const Record& increment : *increments) {
      Status replayed = ReplayAddLocked(increment.name, record.window, record.window_start,
                                        increment.amount, false);
      if (!replayed.ok()) return replayed;
    }
    return {};
  }
  std::lock_guard lock(mutex_);
  if (record.kind == Record::Kind::kSet) {
    table_.Set(record.name, record.window, {record.amount, record.window_start});
    return {};
  }
  return ReplayAddLocked(record.name, record.window, record.window_start, record.amount,
                         record.kind == Record::Kind::kRemove);
}

Status Shard::ReplayAddLocked(const std::string& name, int64_t window, int64_t window_start,
                              int64_t amount, bool remove) {
  CounterTable::Cell cell = table_.Find(name, window).value_or(CounterTable::Cell{});
  if (cell.window_start > window_start) return {};  // an older window: long gone
  if (cell.window_start < window_start) cell = {0, window_start};
  Result<int64_t> next = CheckedAdd(cell.count, amount);
  if (!next.ok()) {
    return Internal(fmt::format("replaying the journal overflows the count of '{}'", name));
  }
  cell.count = *next;
  if (remove && cell.count == 0) {
    table_.Erase(name, window);
  } else {
    table_.Set(name, window, cell);
  }
  return {};
}

Result<std::vector<Record>> Shard::Checkpoint(const std::function<Status()>& rotate) {
  std::lock_guard lock(mutex_);
  if (Status rotated = rotate(); !rotated.ok()) return rotated;
  if (journal_ != nullptr &&
      journal_->failed_records() != undone_records_.load(std::memory_order_acquire)) {
    return Unavailable(
        fmt::format("shard {}: a change whose journal write failed is still being undone; the "
                    "checkpoint is left for later",
                    id_));
  }
  std::vector<Record> records;
  records.reserve(table_.size());
  table_.ForEach([&](std::string_view name, int64_t window, const CounterTable::Cell& cell) {
    records.push_back(
        {Record::Kind::kSet, std::string(name), window, cell.window_start, cell.count});
  });
  std::vector<Record> keys = keys_.Checkpoint(now_());
  records.insert(records.end(), std::make_move_iterator(keys.begin()),
                 std::make_move_iterator(keys.end()));
  return records;
}

CounterTable::Expired Shard::DropExpiredSlice(int64_t now) {
  std::lock_guard lock(mutex_);
  CounterTable::Expired slice = table_.DropExpired(now, kExpirySlice);
  if (slice.looked > largest_expiry_slice_.load(std::memory_order_relaxed)) {
    largest_expiry_slice_.store(slice.looked, std::memory_order_relaxed);
  }
  return slice;
}

size_t Shard::DropExpiredWindows() {
  const int64_t now = now_();
  size_t dropped = 0;
  for (bool more = true; more;) {
    CounterTable::Expired slice = DropExpiredSlice(now);
    dropped += slice.dropped;
    more = slice.more;
  }
  return dropped;
}

size_t Shard::DropExpiredWindowsPaced(std::chrono::steady_clock::time_point deadline) {
  using Clock = std::chrono::steady_clock;
  const int64_t now = now_();
  size_t dropped = 0;
  for (;;) {
    const Clock::time_point started = Clock::now();
    CounterTable::Expired slice = DropExpiredSlice(now);
    dropped += slice.dropped;
    if (!slice.more) return dropped;
    // The rest is what keeps the pauses short. Dropped in one burst,
    // 1,000,000 windows ending at once kept both cores busy for 200-400 ms,
    // and requests waited 65-90 ms: on a shared host a VM whose CPUs are all
    // busy loses them for tens of ms, and a waiter missed the lock for tens
    // of slices in a row, 2 ms gaps between slices or not.
    const Clock::time_point ended = Clock::now();
    const Clock::time_point resume =
        ended + std::max<Clock::duration>(kExpiryMinRest, kExpiryRestPerWork * (ended - started));
    if (resume >= deadline) return dropped;
    std::this_thread::sleep_until(resume);
  }
}

void Shard::ReportTotalsTo(TotalTable& totals) {
  std::lock_guard lock(mutex_);
  totals.AddParts(table_.Observe(&totals));
}

void Shard::DropExpired(std::chrono::steady_clock::time_point deadline) {
  DropExpiredWindowsPaced(deadline);
  DropExpiredKeys();
}

size_t Shard::DropExpiredKeys() { return keys_.DropExpired(now_()); }

size_t Shard::size() const {
  std::lock_guard lock(mutex_);
  return table_.size();
}

std::string LocalShardClient::Describe() const {
  return fmt::format("shard {} (in process)", shard_.id());
}

}  // namespace shardctl::core
