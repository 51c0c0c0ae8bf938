// Coalescer: lets concurrent callers of the same read share one call. A
// caller never takes the answer of a call already under way when it arrived
// (that call may have read before a change the caller saw acknowledged); it
// waits for the next call to start, which one of the waiters makes, and
// every caller waiting for it takes its answer. So an answer is as fresh as
// the caller's own call would have been, and under load one call serves
// many callers. Thread-safe.
#ifndef SHARDCTL_CORE_COALESCER_H_
#define SHARDCTL_CORE_COALESCER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace shardctl::core {

template <typename T>
class Coalescer {
 public:
  // Returns what `call` returned in a call that started after this one began,
  // made by this caller or by another caller of Do with the same `key`. If
  // this caller's own call throws, the exception reaches this caller only;
  // the others waiting make the next call.
  T Do(const std::string& key, const std::function<T()>& call) {
    std::unique_lock lock(mutex_);
    auto it = slots_.try_emplace(key).first;
    Slot& slot = it->second;
    ++slot.users;
    // Forgets the key once nobody uses it, so that many keys cost nothing.
    struct Leave {
      Coalescer* self;
      typename std::map<std::string, Slot>::iterator it;
      ~Leave() {
        if (--it->second.users == 0) self->slots_.erase(it);
      }
    } leave{this, it};
    const uint64_t wanted = slot.started + 1;  // the next call to start
    while (slot.finished < wanted) {
      if (slot.in_flight) {
        ++slot.waiting;
        finished_.wait(lock);
        --slot.waiting;
        continue;
      }
      slot.in_flight = true;
      const uint64_t call_number = ++slot.started;
      lock.unlock();
      std::optional<T> answer;
      try {
        answer.emplace(call());
      } catch (...) {
        lock.lock();
        slot.in_flight = false;  // a waiter calls again
        finished_.notify_all();
        throw;
      }
      lock.lock();
      slot.answer = std::move(answer);
      slot.finished = call_number;
      slot.in_flight = false;
      ++calls_;
      finished_.notify_all();
    }
    return *slot.answer;
  }

  // How many callers of `key` wait for a call to finish (for tests).
  int waiting(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto it = slots_.find(key);
    return it == slots_.end() ? 0 : it->second.waiting;
  }

  // How many calls were made so far (for tests).
  uint64_t calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  struct Slot {
    uint64_t started = 0;   // calls started so far
    uint64_t finished = 0;  // the number of the last call finished
    bool in_flight = false;
    int waiting = 0;
    int users = 0;            // callers in Do for this key
    std::optional<T> answer;  // the last finished call's
  };
  mutable std::mutex mutex_;
  std::condition_variable finished_;
  std::map<std::string, Slot> slots_;  // std::map: references stay valid
  uint64_t calls_ = 0;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_COALESCER_H_
