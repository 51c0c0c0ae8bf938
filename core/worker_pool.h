// WorkerPool: a fixed set of threads that run tasks in the order given. For
// work that may block (a call that waits on the network, or on a shard being
// handed over) and so must not run on an event loop's thread. Thread-safe.
#ifndef SHARDCTL_CORE_WORKER_POOL_H_
#define SHARDCTL_CORE_WORKER_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace shardctl::core {

class WorkerPool {
 public:
  // Starts `threads` threads. REQUIRES: threads > 0.
  explicit WorkerPool(int threads);
  // Runs every task already given, then joins the threads.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `task` on one of the threads, as soon as one is free.
  void Run(std::function<void()> task);

 private:
  void Work();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_WORKER_POOL_H_
