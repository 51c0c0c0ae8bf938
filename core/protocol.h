// The JSON wire format of the HTTP API, kept byte-compatible with the original
// Node.js system: request bodies parsed strictly, replies formatted with the
// original's field order. Pure functions; thread-safe.
#ifndef SHARDCTL_CORE_PROTOCOL_H_
#define SHARDCTL_CORE_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/shard_client.h"
#include "core/status.h"

namespace shardctl::core {

// The body of POST /increment.
struct IncrementRequest {
  int64_t value = 1;  // a missing "value" means 1, as in the original
};

// Parses a POST /increment body: a JSON object whose optional "value" is an
// integer within int64. An empty body counts as {}. Returns the request, or
// kInvalidArgument / kOutOfRange with a message that says what was wrong:
// not JSON, not an object, an unknown field, a value of the wrong type.
Result<IncrementRequest> ParseIncrementRequest(std::string_view body);
std::string FormatIncrementRequest(const IncrementRequest& request);

// {"success":true,"shardId":1,"count":1}
std::string FormatIncrementReply(const IncrementReply& reply);
// Returns the reply, or kBadGateway when `body` is not such a reply.
Result<IncrementReply> ParseIncrementReply(std::string_view body);

// {"shardId":1,"count":1}: a shard's GET /count.
std::string FormatCountReply(int shard_id, int64_t count);
// Returns the count, or kBadGateway when `body` is not such a reply.
Result<int64_t> ParseCountReply(std::string_view body);

// {"total":1}: the aggregator's GET /total.
std::string FormatTotalReply(int64_t total);
// Returns the total, or kBadGateway when `body` is not such a reply.
Result<int64_t> ParseTotalReply(std::string_view body);

// {"error":"<message>"}, with the message escaped as JSON requires.
std::string FormatError(std::string_view message);
// Returns the "error" field of an error reply; for any other body, the body
// itself, cut to a readable length (so a proxy's HTML page still says something).
std::string ParseErrorMessage(std::string_view body);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_PROTOCOL_H_
