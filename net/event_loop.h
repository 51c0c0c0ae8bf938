// EventLoop: what code running on one of HttpServer's event-loop threads may
// ask of that loop, so that it can wait for its own descriptors (a client's
// connections to a shard) in the same epoll as the loop's clients, and never
// block the loop. Everything here is for the loop's own thread only.
#ifndef SHARDCTL_NET_EVENT_LOOP_H_
#define SHARDCTL_NET_EVENT_LOOP_H_

#include <cstdint>

namespace shardctl::net {

class EventLoop {
 public:
  // Told of a watched descriptor's readiness, and of the loop's ticks.
  class Watcher {
   public:
    // `events`: the epoll events that came (EPOLLIN, EPOLLOUT, EPOLLERR, ...).
    virtual void OnReady(uint32_t events) = 0;
    // About every 100 ms, if registered with AddTicker: time to check deadlines.
    virtual void OnTick() {}

   protected:
    ~Watcher() = default;
  };

  // The loop this thread runs, or nullptr on any other thread.
  static EventLoop* Current();

  // Reports `events` on `fd` (level-triggered) to `watcher` from now on;
  // for a descriptor already watched, changes its events and watcher.
  // Returns false if epoll refused. Close the descriptor (or Unwatch it)
  // before `watcher` goes; an event already reported in the pass under way
  // may still reach it, so free watchers on a tick, not at once.
  virtual bool Watch(int fd, uint32_t events, Watcher* watcher) = 0;
  virtual void Unwatch(int fd) = 0;
  virtual void AddTicker(Watcher* watcher) = 0;
  virtual void RemoveTicker(Watcher* watcher) = 0;

 protected:
  ~EventLoop() = default;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_EVENT_LOOP_H_
