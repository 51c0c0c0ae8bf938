#include "core/replica_log.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

namespace shardctl::core {
namespace {

uint64_t NewLogId() {
  std::random_device random;
  uint64_t id = (uint64_t{random()} << 32) ^ random() ^
                static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return id == 0 ? 1 : id;
}

// How long a follower out of sync may go without fetching before it is
// forgotten (and starts again from a snapshot).
constexpr std::chrono::seconds kForgetAfter{30};

}  // namespace

Result<AckPolicy> ParseAckPolicy(std::string_view text) {
  if (text == "all") return AckPolicy::kAll;
  if (text == "primary") return AckPolicy::kPrimary;
  return InvalidArgument(fmt::format("--ack is all or primary, not '{}'", text));
}

ReplicaLog::ReplicaLog(int shard, int64_t epoch, ReplicaLogOptions options)
    : shard_(shard), epoch_(epoch), id_(NewLogId()), options_(options) {}

ReplicaLog::~ReplicaLog() { Fence("the shard is closed"); }

uint64_t ReplicaLog::Append(const Record& record) {
  std::vector<Parked> ready;
  std::vector<ReplicaBatch> batches;
  uint64_t seq;
  {
    std::lock_guard lock(mutex_);
    seq = next_++;
    kept_.push_back({record, Clock::now()});
    if (!fenced_.empty() || parked_.empty()) return seq;
    ready.swap(parked_);
    for (Parked& parked : ready) batches.push_back(From(parked.from));
  }
  for (size_t i = 0; i < ready.size(); ++i) ready[i].done(std::move(batches[i]));
  return seq;
}

ReplicaBatch ReplicaLog::From(uint64_t from) const {
  ReplicaBatch batch{.first = from, .records = {}};
  for (uint64_t seq = std::max(from, base_); seq < next_; ++seq) {
    batch.records.push_back(kept_[seq - base_].record);
  }
  return batch;
}

const ReplicaLog::Entry* ReplicaLog::Oldest(uint64_t acknowledged) const {
  if (acknowledged >= next_ || acknowledged < base_) return nullptr;
  return &kept_[acknowledged - base_];
}

uint64_t ReplicaLog::Replicated() const {
  uint64_t lowest = next_;
  for (const auto& [node, state] : followers_) {
    if (Required(state)) lowest = std::min(lowest, state.acknowledged);
  }
  return lowest;
}

ReplicaLog::Due ReplicaLog::TakeDue() {
  Due due;
  if (waiting_.empty()) return due;
  const uint64_t replicated = Replicated();
  auto end = waiting_.lower_bound(replicated);  // changes before `replicated` are due
  for (auto it = waiting_.begin(); it != end; ++it) due.push_back(std::move(it->second));
  waiting_.erase(waiting_.begin(), end);
  return due;
}

Status ReplicaLog::FencedStatus() const {
  return Status(Code::kTimeout,
                fmt::format("shard {}: the change was not confirmed on its in-sync followers "
                            "({}); its outcome is unknown: retry with the same Idempotency-Key",
                            shard_, fenced_));
}

Status ReplicaLog::WaitReplicated(uint64_t seq) {
  if (options_.ack == AckPolicy::kPrimary) return {};
  std::unique_lock lock(mutex_);
  replicated_.wait(lock, [&] { return !fenced_.empty() || Replicated() > seq; });
  if (fenced_.empty()) return {};
  return FencedStatus();
}

void ReplicaLog::WhenReplicated(uint64_t seq, std::function<void(Status)> done) {
  if (options_.ack == AckPolicy::kPrimary) {
    done(Status());
    return;
  }
  std::unique_lock lock(mutex_);
  if (!fenced_.empty()) {
    Status fenced = FencedStatus();
    lock.unlock();
    done(fenced);
    return;
  }
  if (Replicated() > seq) {
    lock.unlock();
    done(Status());
    return;
  }
  waiting_.emplace(seq, std::move(done));
}

uint64_t ReplicaLog::StartFollower(const std::string& follower) {
  std::lock_guard lock(mutex_);
  Follower& state = followers_[follower];
  // Still required if listed in sync: the snapshot has every change it had.
  state.acknowledged = next_;
  state.last_fetch = Clock::now();
  state.lost = false;
  return next_;
}

void ReplicaLog::Fetch(const std::string& follower, uint64_t log_id, uint64_t from,
                       std::chrono::milliseconds wait, FetchDone done) {
  std::unique_lock lock(mutex_);
  if (!fenced_.empty()) {
    lock.unlock();
    done(Status(Code::kMoved, fmt::format("shard {}: {}", shard_, fenced_)));
    return;
  }
  auto it = followers_.find(follower);
  if (log_id != id_ || it == followers_.end() || from < it->second.acknowledged || from > next_ ||
      from < base_) {
    if (it != followers_.end()) it->second.lost = true;  // out of sync at once, if it was in
    lock.unlock();
    done(Status(Code::kOutOfRange,
                fmt::format("shard {}: follower {} must start again from a snapshot (its "
                            "position is not in this primary's log at epoch {})",
                            shard_, follower, epoch_)));
    return;
  }
  Follower& state = it->second;
  Due due;
  if (from > state.acknowledged) {
    state.acknowledged = from;
    Trim();
    replicated_.notify_all();
    due = TakeDue();
  }
  state.last_fetch = Clock::now();
  if (from < next_ || wait.count() <= 0) {
    ReplicaBatch batch = From(from);
    lock.unlock();
    for (auto& one : due) one(Status());
    done(std::move(batch));
    return;
  }
  parked_.push_back({follower, from, Clock::now() + wait, std::move(done)});
  lock.unlock();
  for (auto& one : due) one(Status());
}

void ReplicaLog::Expire() {
  std::vector<Parked> due;
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    auto split = std::partition(parked_.begin(), parked_.end(),
                                [now](const Parked& parked) { return parked.until > now; });
    due.assign(std::make_move_iterator(split), std::make_move_iterator(parked_.end()));
    parked_.erase(split, parked_.end());
    // A follower waiting on a fetch is in touch, not lagging.
    for (const Parked& parked : parked_) followers_[parked.follower].last_fetch = now;
    Trim();  // also bounds what is kept while no follower fetches
  }
  for (Parked& parked : due) parked.done(ReplicaBatch{.first = parked.from, .records = {}});
}

void ReplicaLog::Trim() {
  // A follower out of sync that stopped fetching long ago (a dead node) no
  // longer holds changes here: if it comes back, it starts from a snapshot.
  const auto gone = Clock::now() - kForgetAfter;
  std::erase_if(followers_, [&](const auto& entry) {
    return !Required(entry.second) && entry.second.last_fetch < gone;
  });
  uint64_t lowest = next_;
  for (const auto& [node, state] : followers_) lowest = std::min(lowest, state.acknowledged);
  // Bounded: a follower far behind starts again from a snapshot.
  if (next_ - lowest > options_.max_kept) lowest = next_ - options_.max_kept;
  while (base_ < lowest && !kept_.empty()) {
    kept_.pop_front();
    ++base_;
  }
}

void ReplicaLog::SetFollowers(const std::vector<std::string>& followers,
                              const std::vector<std::string>& in_sync, int64_t revision) {
  Due due;
  {
    std::lock_guard lock(mutex_);
    SetFollowersLocked(followers, in_sync, revision);
    due = TakeDue();
  }
  for (auto& one : due) one(Status());
}

void ReplicaLog::SetFollowersLocked(const std::vector<std::string>& followers,
                                    const std::vector<std::string>& in_sync, int64_t revision) {
  if (revision < revision_) return;  // an older read: the store has moved on since
  revision_ = revision;
  std::erase_if(followers_, [&](const auto& entry) {
    return std::find(followers.begin(), followers.end(), entry.first) == followers.end() &&
           std::find(in_sync.begin(), in_sync.end(), entry.first) == in_sync.end();
  });
  for (auto& [node, state] : followers_) {
    state.listed = std::find(in_sync.begin(), in_sync.end(), node) != in_sync.end();
    if (state.listed) state.expected = false;
  }
  for (const std::string& node : in_sync) {
    Follower& state = followers_[node];  // listed but never fetched here: required all the same
    if (!state.listed) {
      state.listed = true;
      state.acknowledged = std::max(state.acknowledged, base_);
      state.last_fetch = Clock::now();
    }
  }
  Trim();
  replicated_.notify_all();
}

bool ReplicaLog::ExpectInSync(const std::string& follower) {
  std::lock_guard lock(mutex_);
  auto it = followers_.find(follower);
  if (it == followers_.end() || it->second.lost || !fenced_.empty()) return false;
  it->second.expected = true;
  it->second.expected_from = next_;
  return true;
}

std::vector<std::string> ReplicaLog::ReadyToList() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> ready;
  if (!fenced_.empty()) return ready;
  for (const auto& [node, state] : followers_) {
    if (state.expected && !state.listed && !state.lost &&
        state.acknowledged >= state.expected_from) {
      ready.push_back(node);
    }
  }
  return ready;
}

void ReplicaLog::AbandonExpect(const std::string& follower) {
  Due due;
  {
    std::lock_guard lock(mutex_);
    auto it = followers_.find(follower);
    if (it == followers_.end()) return;
    it->second.expected = false;
    replicated_.notify_all();
    due = TakeDue();
  }
  for (auto& one : due) one(Status());
}

std::vector<std::string> ReplicaLog::Lagging() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> lagging;
  const auto too_old = Clock::now() - options_.lag_max;
  for (const auto& [node, state] : followers_) {
    if (!Required(state)) continue;
    const Entry* oldest = Oldest(state.acknowledged);
    const bool behind = state.lost || state.acknowledged < base_ ||
                        (oldest != nullptr && oldest->at < too_old);
    if (behind) lagging.push_back(node);
  }
  return lagging;
}

std::vector<std::string> ReplicaLog::CaughtUp() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> caught_up;
  const auto recent = Clock::now() - options_.lag_max;
  if (!fenced_.empty()) return caught_up;
  for (const auto& [node, state] : followers_) {
    if (!Required(state) && !state.lost && next_ - state.acknowledged <= kCatchUpWindow &&
        state.last_fetch > recent) {
      caught_up.push_back(node);
    }
  }
  return caught_up;
}

std::vector<FollowerProgress> ReplicaLog::Progress() const {
  std::lock_guard lock(mutex_);
  std::vector<FollowerProgress> progress;
  for (const auto& [node, state] : followers_) {
    progress.push_back({node, state.acknowledged,
                        next_ > state.acknowledged ? next_ - state.acknowledged : 0,
                        Required(state)});
  }
  return progress;
}

void ReplicaLog::Fence(const std::string& why) {
  std::vector<Parked> parked;
  Due due;
  Status fenced;
  {
    std::lock_guard lock(mutex_);
    if (!fenced_.empty()) return;
    fenced_ = why.empty() ? "fenced" : why;
    parked.swap(parked_);
    for (auto& [seq, one] : waiting_) due.push_back(std::move(one));
    waiting_.clear();
    fenced = FencedStatus();
    replicated_.notify_all();
  }
  for (auto& one : due) one(fenced);
  for (Parked& one : parked) {
    one.done(Status(Code::kMoved, fmt::format("shard {}: {}", shard_, why)));
  }
}

}  // namespace shardctl::core
