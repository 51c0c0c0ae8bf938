// Counter names: what a name may hold, and the default counter's name.
// Pure functions; thread-safe.
#ifndef SHARDCTL_CORE_COUNTER_NAME_H_
#define SHARDCTL_CORE_COUNTER_NAME_H_

#include <cstddef>
#include <string_view>

#include "core/status.h"

namespace shardctl::core {

// The counter that requests without a "counter" field use: the original's one.
inline constexpr std::string_view kDefaultCounter = "default";
inline constexpr size_t kMaxCounterNameBytes = 200;

// Returns OK when `name` is 1 to 200 bytes of ASCII letters, digits and
// `_ . : - /`; otherwise kInvalidArgument saying what is allowed.
Status ValidateCounterName(std::string_view name);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_COUNTER_NAME_H_
