// Strict parsing of counter values typed by people (command line, stdin).
// Pure functions; thread-safe.
#ifndef SHARDCTL_CORE_VALUE_H_
#define SHARDCTL_CORE_VALUE_H_

#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace shardctl::core {

// Parses `text` as a decimal int64: an optional '-' and digits, no leading
// zeros ("0" itself is fine), no '+', no spaces, no hex or octal prefixes.
// Returns the value, or kInvalidArgument with a message that quotes the text
// and says what is accepted (kOutOfRange when the digits leave int64).
Result<int64_t> ParseValue(std::string_view text);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_VALUE_H_
