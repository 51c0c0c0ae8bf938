// Coalescer: concurrent reads share one call, never one that began before
// they did.
#include "core/coalescer.h"

#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

// A read whose calls can be held inside until released; each call returns
// the number of the call.
class HeldRead {
 public:
  int Call() {
    std::unique_lock lock(mutex_);
    int number = ++calls_;
    ++inside_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return released_ >= number; });
    --inside_;
    return number;
  }
  void AwaitInside() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return inside_ > 0; });
  }
  void ReleaseThrough(int number) {
    std::lock_guard lock(mutex_);
    released_ = number;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int calls_ = 0, inside_ = 0, released_ = 0;
};

TEST(CoalescerTest, AloneACallerMakesItsOwnCall) {
  Coalescer<int> coalescer;
  EXPECT_EQ(coalescer.Do("total", [] { return 7; }), 7);
  EXPECT_EQ(coalescer.Do("total", [] { return 8; }), 8);
  EXPECT_EQ(coalescer.calls(), 2u);
}

TEST(CoalescerTest, CallersThatArriveDuringACallShareTheNextOneNotThatOne) {
  Coalescer<int> coalescer;
  HeldRead read;
  auto call = [&] { return read.Call(); };
  int first = 0;
  std::thread leader([&] { first = coalescer.Do("total", call); });
  read.AwaitInside();  // call 1 is under way

  constexpr int kLate = 4;
  std::vector<int> late(kLate, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kLate; ++i) {
    threads.emplace_back([&, i] { late[i] = coalescer.Do("total", call); });
  }
  // None of them may take call 1's answer; let it finish once they wait.
  while (coalescer.waiting("total") < kLate) std::this_thread::yield();
  read.ReleaseThrough(2);
  leader.join();
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(first, 1);
  for (int answer : late) EXPECT_EQ(answer, 2);
  EXPECT_EQ(coalescer.calls(), 2u);
}

TEST(CoalescerTest, AFailedCallReachesItsCallerAndTheOthersCallAgain) {
  Coalescer<int> coalescer;
  HeldRead read;
  std::thread leader([&] {
    EXPECT_THROW(coalescer.Do("total",
                              [&]() -> int {
                                read.Call();
                                throw std::runtime_error("no thread");
                              }),
                 std::runtime_error);
  });
  read.AwaitInside();
  int answer = 0;
  std::thread waiter([&] { answer = coalescer.Do("total", [] { return 9; }); });
  while (coalescer.waiting("total") < 1) std::this_thread::yield();
  read.ReleaseThrough(1);
  leader.join();
  waiter.join();  // would hang if the failed call left the key in flight
  EXPECT_EQ(answer, 9);
}

TEST(CoalescerTest, DifferentKeysNeverShare) {
  Coalescer<int> coalescer;
  HeldRead read;
  int held = 0;
  std::thread leader([&] { held = coalescer.Do("a", [&] { return read.Call(); }); });
  read.AwaitInside();
  EXPECT_EQ(coalescer.Do("b", [] { return 42; }), 42);  // not held up by "a"
  read.ReleaseThrough(1);
  leader.join();
  EXPECT_EQ(held, 1);
}

}  // namespace
}  // namespace shardctl::core
