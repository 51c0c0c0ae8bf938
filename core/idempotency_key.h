// Idempotency keys, as the IETF httpapi draft "The Idempotency-Key HTTP
// Header Field" defines them: what a valid key is, and how the header
// carries one (a Structured Field String, "..."; a bare token is accepted
// too, as Stripe and others send it). Pure functions; thread-safe.
#ifndef SHARDCTL_CORE_IDEMPOTENCY_KEY_H_
#define SHARDCTL_CORE_IDEMPOTENCY_KEY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace shardctl::core {

inline constexpr std::string_view kIdempotencyKeyHeader = "Idempotency-Key";
inline constexpr size_t kMaxIdempotencyKeyBytes = 255;
// How long a shard remembers a key unless told otherwise: 24 hours.
inline constexpr int64_t kDefaultIdempotencyWindowSeconds = 24 * 60 * 60;

// Returns OK for a valid key: 1 to 255 bytes of printable ASCII (space to
// '~'), as the draft's sf-string allows; kInvalidArgument saying why otherwise.
Status ValidateIdempotencyKey(std::string_view key);

// Returns the key an Idempotency-Key header value carries: a Structured Field
// String ("abc", with \" and \\ escapes) or a bare token (abc: visible ASCII,
// no quote at the start). Surrounding spaces are ignored. Returns
// kInvalidArgument when it is neither or the key is not valid.
Result<std::string> ParseIdempotencyKeyHeader(std::string_view value);

// The header value for `key`: a Structured Field String.
// REQUIRES: ValidateIdempotencyKey(key).ok().
std::string FormatIdempotencyKeyHeader(std::string_view key);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_IDEMPOTENCY_KEY_H_
