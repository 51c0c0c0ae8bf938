// Fixed time windows for rate limiting: a windowed counter counts into the
// current window of W seconds, aligned to the clock (windows start at
// multiples of W seconds since the Unix epoch), as Envoy's rate-limit service
// does. Pure functions; thread-safe.
#ifndef SHARDCTL_CORE_WINDOW_H_
#define SHARDCTL_CORE_WINDOW_H_

#include <cstdint>

#include "core/status.h"

namespace shardctl::core {

inline constexpr int64_t kMaxWindowSeconds = 7 * 24 * 3600;  // a week

// Returns OK when 1 <= seconds <= kMaxWindowSeconds, else kInvalidArgument.
Status ValidateWindow(int64_t seconds);

// The start of the window of `window_seconds` that holds `now_seconds`.
// REQUIRES: window_seconds > 0, now_seconds a real time (not near INT64_MIN).
int64_t WindowStart(int64_t now_seconds, int64_t window_seconds);

// Seconds since the Unix epoch, from the system clock.
int64_t SystemNowSeconds();

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_WINDOW_H_
