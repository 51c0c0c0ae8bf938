#include "core/window.h"

#include <cassert>
#include <chrono>

#include <fmt/format.h>

namespace shardctl::core {

Status ValidateWindow(int64_t seconds) {
  if (seconds < 1 || seconds > kMaxWindowSeconds) {
    return InvalidArgument(
        fmt::format("the window must be 1 to {} seconds, not {}", kMaxWindowSeconds, seconds));
  }
  return {};
}

int64_t WindowStart(int64_t now_seconds, int64_t window_seconds) {
  assert(window_seconds > 0);
  int64_t rest = now_seconds % window_seconds;
  if (rest < 0) rest += window_seconds;  // before the epoch: still aligned downwards
  return now_seconds - rest;
}

int64_t SystemNowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace shardctl::core
