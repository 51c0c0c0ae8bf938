#include "core/aggregator.h"

#include <algorithm>
#include <cassert>
#include <future>
#include <numeric>
#include <optional>
#include <random>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "core/durable_batch.h"
#include "core/int128.h"
#include "core/router.h"
#include "core/total_table.h"
#include "core/window.h"

namespace shardctl::core {
namespace {

// The most parts a leaderboard asks a shard for at once (the batches double
// from max(K, 64) up to this).
constexpr size_t kMaxRankBatch = 8192;

// Returns OK if every result is; otherwise a Status with the first failure's
// code whose message names every failure.
template <typename T>
Status CombineFailures(const std::vector<Result<T>>& results, std::string_view what) {
  Status first;
  std::string failures;
  for (const Result<T>& result : results) {
    if (result.ok()) continue;
    if (first.ok()) first = result.status();
    failures += failures.empty() ? "" : "; ";
    failures += result.status().message();
  }
  if (first.ok()) return first;
  return Status(first.code(), fmt::format("{}: {}", what, failures));
}

// A failure in reaching the shard, rather than the shard's own answer.
bool IsTransportFailure(const Status& status) {
  return status.code() == Code::kUnavailable || status.code() == Code::kTimeout;
}

}  // namespace

// Whether one shard is up, since when, and why it went down.
class Aggregator::Health {
 public:
  bool up() const { return up_.load(std::memory_order_acquire); }

  void Start(int64_t now) { since_ = now; }

  void MarkDown(const Status& failure, int64_t now) {
    std::lock_guard lock(mutex_);
    if (up_.load(std::memory_order_relaxed)) since_ = now;
    last_error_ = failure.message();
    up_.store(false, std::memory_order_release);
  }

  // Counts one call by its outcome.
  void Count(const Status& outcome) {
    int kind = outcome.code() == Code::kUnavailable ? 1 : outcome.code() == Code::kTimeout ? 2 : 0;
    calls_[kind].fetch_add(1, std::memory_order_relaxed);
  }

  void MarkUp(int64_t now) {
    std::lock_guard lock(mutex_);
    if (!up_.load(std::memory_order_relaxed)) since_ = now;
    up_.store(true, std::memory_order_release);
  }

  // Fills in the state's up, since and last_error.
  void Describe(ShardState& state) const {
    std::lock_guard lock(mutex_);
    state.up = up_.load(std::memory_order_relaxed);
    state.since = since_;
    state.last_error = last_error_;
    state.calls_ok = calls_[0].load(std::memory_order_relaxed);
    state.calls_refused = calls_[1].load(std::memory_order_relaxed);
    state.calls_timeout = calls_[2].load(std::memory_order_relaxed);
  }

  std::string last_error() const {
    std::lock_guard lock(mutex_);
    return last_error_;
  }

 private:
  std::atomic<bool> up_{true};
  std::atomic<uint64_t> calls_[3] = {};  // ok, refused, timeout
  mutable std::mutex mutex_;
  int64_t since_ = 0;
  std::string last_error_;
};

Aggregator::Aggregator(std::vector<std::unique_ptr<ShardClient>> shards, AggregatorOptions options)
    : shards_(std::move(shards)),
      health_(std::make_unique<Health[]>(shards_.size())),
      routing_(options.routing),
      now_(options.now ? std::move(options.now) : SystemNowSeconds),
      count_every_shard_(std::move(options.count_every_shard)),
      total_table_(options.totals) {
  assert(!shards_.empty());
  int64_t now = now_();
  for (size_t i = 0; i < shards_.size(); ++i) {
    assert(shards_[i] != nullptr);
    all_in_process_ = all_in_process_ && shards_[i]->InProcess();
    health_[i].Start(now);
  }
}

Aggregator::~Aggregator() = default;

Status Aggregator::Down(int i) const {
  return Unavailable(fmt::format("{} is down, not asked until it answers again (last error: {})",
                                 shards_[i]->Describe(), health_[i].last_error()));
}

template <typename T, typename Call>
Result<T> Aggregator::CallShard(int i, const Call& call) {
  Health& health = health_[i];
  if (!health.up()) {
    health.Count(Unavailable(""));
    return Down(i);
  }
  Result<T> result = [&] {
    if constexpr (std::is_invocable_v<const Call&, ShardClient&, int>) {
      return call(*shards_[i], i);
    } else {
      return call(*shards_[i]);
    }
  }();
  health.Count(result.status());
  if (!result.ok() && IsTransportFailure(result.status())) health.MarkDown(result.status(), now_());
  return result;
}

template <typename T, typename Call>
std::vector<Result<T>> Aggregator::AskShards(const std::vector<int>& involved, const Call& call) {
  std::vector<Result<T>> results;
  results.reserve(involved.size());
  if (all_in_process_ || involved.size() <= 1) {
    for (int i : involved) results.push_back(call(i));
    return results;
  }
  // The first is asked on this thread while the others are asked on their own.
  std::vector<std::future<Result<T>>> pending;
  for (size_t k = 1; k < involved.size(); ++k) {
    pending.push_back(std::async(std::launch::async, [&call, i = involved[k]] { return call(i); }));
  }
  results.push_back(call(involved[0]));
  for (auto& future : pending) results.push_back(future.get());
  return results;
}

template <typename T, typename Call>
std::vector<Result<T>> Aggregator::AskEveryShard(const Call& call) {
  std::vector<int> every(static_cast<size_t>(shard_count()));
  std::iota(every.begin(), every.end(), 0);
  return AskShards<T>(every, [this, &call](int i) { return CallShard<T>(i, call); });
}

namespace {

// OK when every shard in `involved` counted its share of a batch (answers[k]
// is shard involved[k]'s); otherwise the first failure's code, naming every
// failure and the shards that did count theirs.
template <typename T>
Status BatchFailure(const std::vector<int>& involved, const std::vector<Result<T>>& answers) {
  std::string applied_on;
  Status first_failure;
  std::string failures;
  for (size_t k = 0; k < involved.size(); ++k) {
    if (answers[k].ok()) {
      applied_on += fmt::format("{}{}", applied_on.empty() ? "" : ", ", involved[k]);
      continue;
    }
    if (first_failure.ok()) first_failure = answers[k].status();
    failures += failures.empty() ? "" : "; ";
    failures += answers[k].status().message();
  }
  if (first_failure.ok()) return first_failure;
  return Status(first_failure.code(),
                fmt::format("batch not fully counted: {} ({})", failures,
                            applied_on.empty() ? "no shard counted its share"
                                               : "shards " + applied_on + " counted theirs"));
}

}  // namespace

int Aggregator::FirstShard(const std::string& idempotency_key) {
  const int count = shard_count();
  if (!idempotency_key.empty()) return ShardForKey(idempotency_key, count);
  if (routing_ == Routing::kRoundRobin) {
    return static_cast<int>(next_shard_.fetch_add(1, std::memory_order_relaxed) %
                            static_cast<uint64_t>(count));
  }
  thread_local std::minstd_rand random(std::random_device{}());
  return static_cast<int>(random() % static_cast<unsigned>(count));
}

template <typename T, typename Call>
Result<T> Aggregator::CallPassingOver(int first, bool may_pass_over, const Call& call,
                                      std::string_view what) {
  if (!may_pass_over) return CallShard<T>(first, call);
  const int count = shard_count();
  std::string failures;
  for (int step = 0; step < count; ++step) {
    Result<T> reply = CallShard<T>((first + step) % count, call);
    // kUnavailable: the shard is down or refused the connection, so it surely
    // did not apply the increment, and the next one may take it. Anything
    // else (an answer, a refusal, a timeout) is the increment's outcome.
    if (reply.ok() || reply.status().code() != Code::kUnavailable) return reply;
    failures += failures.empty() ? "" : "; ";
    failures += reply.status().message();
  }
  return Unavailable(fmt::format("no shard could take {}: {}", what, failures));
}

Result<IncrementReply> Aggregator::Increment(const IncrementRequest& request) {
  auto increment = [&request](ShardClient& shard) { return shard.Increment(request); };
  if (routing_ == Routing::kValue) {
    return CallShard<IncrementReply>(ShardFor(request.value, shard_count()), increment);
  }
  // A keyed increment stays with its key's shard, where a retry must find it.
  return CallPassingOver<IncrementReply>(FirstShard(request.idempotency_key),
                                         request.idempotency_key.empty(), increment,
                                         "the increment");
}

const ShardClient::RunBlocking& Aggregator::Blocking() {
  // As many threads as calls that may wait at once for a hand-over: they
  // sleep, they do not compete for the cores.
  static constexpr int kBlockingThreads = 32;
  std::call_once(blocking_made_, [this] {
    blocking_ = std::make_unique<WorkerPool>(kBlockingThreads);
    run_blocking_ = [pool = blocking_.get()](std::function<void()> task) {
      pool->Run(std::move(task));
    };
  });
  return run_blocking_;
}

void Aggregator::RunBlocking(std::function<void()> task) { Blocking()(std::move(task)); }

void Aggregator::IncrementAsync(const IncrementRequest& request,
                                ShardClient::IncrementDone done) {
  if (routing_ != Routing::kValue) {
    RunBlocking([this, request, done = std::move(done)] { done(Increment(request)); });
    return;
  }
  const int i = ShardFor(request.value, shard_count());
  if (!health_[i].up()) {
    health_[i].Count(Unavailable(""));
    done(Down(i));
    return;
  }
  shards_[i]->IncrementAsync(
      request,
      [this, i, done = std::move(done)](Result<IncrementReply> reply) {
        health_[i].Count(reply.status());
        if (!reply.ok() && IsTransportFailure(reply.status())) {
          health_[i].MarkDown(reply.status(), now_());
        }
        done(std::move(reply));
      },
      Blocking());
}

Result<BatchReply> Aggregator::IncrementBatch(const BatchRequest& request) {
  assert(!request.values.empty() && request.values.size() <= BatchRequest::kMaxValues);
  // The reply says which shards took their share, so each share's write must
  // be known to have succeeded or failed before it is built.
  DurableBatch::Suspend wait_for_each_share;
  const int count = shard_count();
  struct Share {
    Int128 sum = 0;
    int64_t values = 0;
  };
  // Under value routing each value's shard gets a share; otherwise one shard
  // (`whole`) takes the whole batch.
  std::vector<Share> shares(count);
  int whole = -1;
  if (routing_ == Routing::kValue) {
    for (int64_t value : request.values) {
      Share& share = shares[ShardFor(value, count)];
      share.sum += value;
      ++share.values;
    }
  } else {
    whole = FirstShard(request.idempotency_key);
    for (int64_t value : request.values) shares[whole].sum += value;
    shares[whole].values = static_cast<int64_t>(request.values.size());
  }
  for (int i = 0; i < count; ++i) {
    if (shares[i].values > 0 && !FitsInt64(shares[i].sum)) {
      return OutOfRange(fmt::format(
          "the {} values of the batch that go to shard {} add up to more than a 64-bit count "
          "holds; nothing was counted",
          shares[i].values, i));
    }
  }

  auto apply = [&request](int64_t sum) {
    return [&request, sum](ShardClient& shard) {
      IncrementRequest increment;
      increment.value = sum;
      increment.counter = request.counter;
      increment.idempotency_key = request.idempotency_key;
      return shard.Increment(increment);
    };
  };
  BatchReply reply;
  if (whole >= 0) {
    // Without a key the batch may pass over a shard that is down, as a single
    // increment may; with a key it stays with the key's shard.
    const Share& share = shares[whole];
    Result<IncrementReply> answer =
        CallPassingOver<IncrementReply>(whole, request.idempotency_key.empty(),
                                        apply(static_cast<int64_t>(share.sum)), "the batch");
    if (!answer.ok()) return answer.status();
    reply.applied = share.values;
    reply.parts.push_back({answer->shard_id, share.values, answer->count});
    reply.window_end = answer->window_end;
    return reply;
  }

  // Value routing: every shard with a share, in parallel when remote.
  std::vector<int> involved;
  for (int i = 0; i < count; ++i) {
    if (shares[i].values > 0) involved.push_back(i);
  }
  std::vector<Result<IncrementReply>> answers = AskShards<IncrementReply>(involved, [&](int i) {
    return CallShard<IncrementReply>(i, apply(static_cast<int64_t>(shares[i].sum)));
  });
  if (Status failed = BatchFailure(involved, answers); !failed.ok()) return failed;
  for (size_t k = 0; k < involved.size(); ++k) {
    const int i = involved[k];
    reply.applied += shares[i].values;
    reply.parts.push_back({i, shares[i].values, answers[k]->count});
    reply.window_end = std::max(reply.window_end, answers[k]->window_end);
  }
  return reply;
}

Result<ManyBatchReply> Aggregator::IncrementMany(const ManyRequest& request) {
  assert(!request.items.empty() && request.items.size() <= ManyRequest::kMaxItems);
  const int count = shard_count();
  // Each shard's share; under round-robin and random, one shard takes all.
  std::vector<ManyRequest> shares(count);
  int whole = -1;
  if (routing_ == Routing::kValue) {
    for (ManyRequest& share : shares) {
      share.window = request.window;
      share.idempotency_key = request.idempotency_key;
    }
    for (const ManyRequest::Item& item : request.items) {
      shares[ShardFor(item.value, count)].items.push_back(item);
    }
  } else {
    whole = FirstShard(request.idempotency_key);
    shares[whole] = request;
  }
  // Refused before anything is applied: a share in which one counter's
  // increments leave int64. Only a share whose values add up to more than
  // int64 in absolute value can hold one, so most shares are not looked into.
  for (int i = 0; i < count; ++i) {
    Int128 magnitude = 0;
    for (const ManyRequest::Item& item : shares[i].items) {
      magnitude += item.value < 0 ? -static_cast<Int128>(item.value) : item.value;
    }
    if (FitsInt64(magnitude)) continue;
    std::unordered_map<std::string_view, Int128> sums;
    for (const ManyRequest::Item& item : shares[i].items) {
      Int128& sum = sums[item.counter];
      sum += item.value;
      if (!FitsInt64(sum)) {
        return OutOfRange(fmt::format(
            "the increments of '{}' in the batch add up to more than a 64-bit count holds; "
            "nothing was counted",
            item.counter));
      }
    }
  }

  auto apply = [&shares](int i) {
    return [&shares, i](ShardClient& shard) { return shard.IncrementMany(shares[i]); };
  };
  ManyBatchReply reply;
  if (whole >= 0) {
    // As IncrementBatch: without a key it may pass over a shard that is down.
    Result<ManyReply> answer = CallPassingOver<ManyReply>(
        whole, request.idempotency_key.empty(),
        [&](ShardClient& shard) { return shard.IncrementMany(request); }, "the batch");
    if (!answer.ok()) return answer.status();
    reply.applied = answer->applied;
    reply.window_end = answer->window_end;
    reply.parts.push_back(*answer);
    return reply;
  }

  std::vector<int> involved;
  for (int i = 0; i < count; ++i) {
    if (!shares[i].items.empty()) involved.push_back(i);
  }
  std::vector<Result<ManyReply>> answers =
      AskShards<ManyReply>(involved, [&](int i) { return CallShard<ManyReply>(i, apply(i)); });
  if (Status failed = BatchFailure(involved, answers); !failed.ok()) return failed;
  for (const Result<ManyReply>& answer : answers) {
    reply.applied += answer->applied;
    reply.window_end = std::max(reply.window_end, answer->window_end);
    reply.parts.push_back(*answer);
  }
  return reply;
}

Result<TotalReply> Aggregator::Total(const CounterRef& counter, bool partial) {
  if (all_in_process_) return AskTotal(counter, partial);
  return totals_.Do(fmt::format("{}@{}{}", counter.name, counter.window, partial ? "?partial" : ""),
                    [&] { return AskTotal(counter, partial); });
}

Result<TotalReply> Aggregator::AskTotal(const CounterRef& counter, bool partial) {
  auto counts = count_every_shard_ ? count_every_shard_(counter)
                                   : AskEveryShard<CountReply>([&counter](ShardClient& shard) {
                                       return shard.Count(counter);
                                     });
  if (!partial) {
    if (Status failed = CombineFailures(counts, "no total"); !failed.ok()) return failed;
  }

  // Summed in 128 bits: parts may be negative, so a running int64 sum could
  // overflow on the way to a total that fits.
  TotalReply reply;
  reply.partial = partial;
  Int128 total = 0;
  for (int i = 0; i < shard_count(); ++i) {
    const Result<CountReply>& count = counts[i];
    if (!count.ok()) {
      reply.parts.push_back(0);
      reply.missing.push_back({i, count.status().message()});
      continue;
    }
    total += count->count;
    reply.parts.push_back(count->count);
    reply.window_end = std::max(reply.window_end, count->window_end);
  }
  if (!FitsInt64(total)) return Internal("the total of all shards does not fit in a 64-bit count");
  reply.total = static_cast<int64_t>(total);
  return reply;
}

Result<CounterList> Aggregator::List(const ListQuery& query) {
  assert(query.limit >= 1 && query.top >= 0);
  return query.top > 0 ? Top(query) : Page(query);
}

// Every shard's page after `after`, one more than asked: a shard that has
// more than `limit` names may hold names that sort after the others' last,
// so only the names up to the first such shard's last are complete (summed
// over every shard). Those are at least limit + 1 names whenever any shard
// had more, so one round always fills the page and tells whether more follow.
Result<CounterList> Aggregator::Page(const ListQuery& query) {
  const PageQuery page{query.prefix, query.after, static_cast<size_t>(query.limit) + 1};
  auto pages = AskEveryShard<std::vector<CounterPart>>(
      [&page](ShardClient& shard) { return shard.ListPage(page); });
  if (Status failed = CombineFailures(pages, "no listing"); !failed.ok()) return failed;

  std::optional<std::string_view> complete_to;  // none: every shard gave all it has
  for (const auto& parts : pages) {
    if (parts->size() < page.limit) continue;
    std::string_view last = parts->back().name;
    if (!complete_to || last < *complete_to) complete_to = last;
  }
  // Each shard's page is in name order: merged in one pass, the parts of a
  // name summed as it comes up.
  std::vector<size_t> at(pages.size(), 0);
  CounterList result;
  result.counters.reserve(static_cast<size_t>(query.limit));
  for (;;) {
    std::optional<std::string_view> name;  // the least name not merged yet
    for (size_t s = 0; s < pages.size(); ++s) {
      if (at[s] == pages[s]->size()) continue;
      std::string_view candidate = (*pages[s])[at[s]].name;
      if (!name || candidate < *name) name = candidate;
    }
    if (!name || (complete_to && *name > *complete_to)) break;
    if (result.counters.size() == static_cast<size_t>(query.limit)) {
      result.next = result.counters.back().name;  // and `name` follows
      break;
    }
    Int128 total = 0;
    for (size_t s = 0; s < pages.size(); ++s) {
      if (at[s] < pages[s]->size() && (*pages[s])[at[s]].name == *name) {
        total += (*pages[s])[at[s]++].count;
      }
    }
    if (!FitsInt64(total)) {
      return Internal(fmt::format("the total of '{}' does not fit in a 64-bit count", *name));
    }
    result.counters.push_back({std::string(*name), static_cast<int64_t>(total)});
  }
  return result;
}

// The threshold algorithm (Fagin, Lotem and Naor): read every shard's parts
// in its order by count, highest first, a batch at a time; learn the total
// of each counter seen (its part on every shard); stop once the K-th highest
// total seen is above what any counter not seen yet could reach: the sum,
// over the shards, of the last part read there (or 0, for a counter with no
// part on a shard; or 0 for a shard read to its end). Exact, negative parts
// included: an unseen counter's part on a shard is either after the cursor
// there (so no higher than the last part read) or absent (0).
Result<CounterList> Aggregator::Top(const ListQuery& query) {
  const size_t k = static_cast<size_t>(query.top);
  if (total_table_ != nullptr) {
    // With a prefix few names hold, the shards' name indexes find them faster
    // than a walk down the ranks of every name.
    if (auto top = total_table_->Top(query.prefix, k, 64 * k + 4096)) {
      CounterList result;
      result.counters.reserve(top->size());
      for (CounterPart& part : *top) result.counters.push_back({std::move(part.name), part.count});
      return result;
    }
  }
  const int shards = shard_count();
  std::vector<RankQuery> cursors(static_cast<size_t>(shards));
  std::vector<bool> ended(static_cast<size_t>(shards), false);
  std::vector<Int128> bound(static_cast<size_t>(shards), 0);
  std::unordered_set<std::string> seen;
  std::vector<CounterTotal> best;  // the highest totals seen, highest first, at most k
  auto higher = [](const CounterTotal& a, const CounterTotal& b) {
    return a.total != b.total ? a.total > b.total : a.name < b.name;
  };
  size_t batch = std::max<size_t>(k, 64);
  for (;;) {
    for (RankQuery& cursor : cursors) {
      cursor.prefix = query.prefix;
      cursor.limit = batch;
    }
    auto ranks = AskEveryShard<std::vector<CounterPart>>([&](ShardClient& shard, int i) {
      // A shard read to its end is asked for nothing more.
      if (ended[static_cast<size_t>(i)])
        return Result<std::vector<CounterPart>>(std::vector<CounterPart>());
      return shard.Rank(cursors[static_cast<size_t>(i)]);
    });
    if (Status failed = CombineFailures(ranks, "no leaderboard"); !failed.ok()) return failed;

    std::vector<std::string> fresh;
    for (size_t i = 0; i < ranks.size(); ++i) {
      if (ended[i]) continue;
      const std::vector<CounterPart>& parts = *ranks[i];
      for (const CounterPart& part : parts) {
        if (seen.insert(part.name).second) fresh.push_back(part.name);
      }
      if (parts.size() < batch) ended[i] = true;
      if (!parts.empty()) {
        cursors[i].from_start = false;
        cursors[i].after = {parts.back().count, parts.back().name};
        bound[i] = std::max<int64_t>(parts.back().count, 0);
      }
      if (ended[i]) bound[i] = 0;
    }
    if (!fresh.empty()) {
      auto counts = AskEveryShard<std::vector<int64_t>>(
          [&fresh](ShardClient& shard) { return shard.Counts(fresh); });
      if (Status failed = CombineFailures(counts, "no leaderboard"); !failed.ok()) return failed;
      for (size_t j = 0; j < fresh.size(); ++j) {
        Int128 total = 0;
        for (const auto& parts : counts) {
          if (parts->size() != fresh.size()) {
            return Internal("a shard answered counts for other counters than asked");
          }
          total += (*parts)[j];
        }
        if (!FitsInt64(total)) {
          return Internal(
              fmt::format("the total of '{}' does not fit in a 64-bit count", fresh[j]));
        }
        best.push_back({std::move(fresh[j]), static_cast<int64_t>(total)});
      }
      size_t keep = std::min(best.size(), k);
      std::partial_sort(best.begin(), best.begin() + static_cast<ptrdiff_t>(keep), best.end(),
                        higher);
      best.resize(keep);
    }
    if (std::all_of(ended.begin(), ended.end(), [](bool e) { return e; })) break;
    Int128 threshold = 0;
    for (Int128 b : bound) threshold += b;
    // Strictly above: a counter not seen yet with a total equal to the K-th
    // could still come first by name.
    if (best.size() == k && Int128(best.back().total) > threshold) break;
    batch = std::min<size_t>(batch * 2, kMaxRankBatch);
  }
  CounterList result;
  result.counters = std::move(best);
  return result;
}

Result<int64_t> Aggregator::Reset(const std::string& name) {
  auto removed = AskEveryShard<int64_t>([&name](ShardClient& shard) { return shard.Reset(name); });
  if (Status failed =
          CombineFailures(removed, "reset incomplete (shards not named here did reset)");
      !failed.ok()) {
    return failed;
  }
  Int128 total = 0;
  for (const Result<int64_t>& part : removed) total += *part;
  if (!FitsInt64(total)) return Internal("the removed total does not fit in a 64-bit count");
  return static_cast<int64_t>(total);
}

std::vector<ShardState> Aggregator::Shards() {
  CounterRef plain;
  auto counts =
      AskEveryShard<CountReply>([&plain](ShardClient& shard) { return shard.Count(plain); });
  std::vector<ShardState> states(shards_.size());
  for (int i = 0; i < shard_count(); ++i) {
    ShardState& state = states[i];
    state.id = i;
    state.address = shards_[i]->Address();
    health_[i].Describe(state);
    if (counts[i].ok()) state.count = counts[i]->count;
  }
  return states;
}

std::vector<ShardState> Aggregator::ShardHealth() const {
  std::vector<ShardState> states(shards_.size());
  for (int i = 0; i < shard_count(); ++i) {
    states[i].id = i;
    states[i].address = shards_[i]->Address();
    health_[i].Describe(states[i]);
  }
  return states;
}

void Aggregator::ProbeDownShards() {
  std::vector<std::future<void>> probes;
  for (int i = 0; i < shard_count(); ++i) {
    if (health_[i].up()) continue;
    probes.push_back(std::async(std::launch::async, [this, i] {
      Result<CountReply> answer = shards_[i]->Count(CounterRef{});
      if (answer.ok()) {
        health_[i].MarkUp(now_());
      } else {
        health_[i].MarkDown(answer.status(), now_());
      }
    }));
  }
  for (auto& probe : probes) probe.get();
}

}  // namespace shardctl::core
