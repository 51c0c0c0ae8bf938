// The JSON wire format of the HTTP API, kept byte-compatible with the original
// Node.js system for the default counter: request bodies and query parameters
// parsed strictly, replies formatted with the original's field order. Pure
// functions; thread-safe.
#ifndef SHARDCTL_CORE_PROTOCOL_H_
#define SHARDCTL_CORE_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/aggregator.h"
#include "core/shard_client.h"
#include "core/status.h"

namespace shardctl::core {

// Parsers of what clients send return kInvalidArgument with a message that
// says what was wrong. Parsers of what servers answer return kBadGateway when
// the answer is not what was expected.

// POST /increment: {"value":V,"counter":"name","window":W}, every field
// optional. An empty body counts as {}.
Result<IncrementRequest> ParseIncrementRequest(std::string_view body);
// The same, with the values of the request's Idempotency-Key headers (none,
// or one: several are refused) parsed into request.idempotency_key.
Result<IncrementRequest> ParseIncrementRequest(std::string_view body,
                                               const std::vector<std::string>& key_headers);
std::string FormatIncrementRequest(const IncrementRequest& request);

// True if a POST /increment body is the batch form, {"values":[...]}: it
// mentions "values" (a cheap test that never parses the body).
bool IsBatchBody(std::string_view body);
// POST /increment {"values":[V1,...],"counter":"name","window":W}: 1 to
// BatchRequest::kMaxValues integers, "counter" and "window" optional. A bad
// value is named by its position: "values[3] must be an integer, not string".
// Idempotency-Key headers as in ParseIncrementRequest.
Result<BatchRequest> ParseBatchRequest(std::string_view body,
                                       const std::vector<std::string>& key_headers);
std::string FormatBatchRequest(const BatchRequest& request);
// {"success":true,"applied":N,"shards":[{"shardId":0,"applied":n,"count":c},...]},
// plus "counter", "window" and "windowEnd" as in FormatIncrementReply.
std::string FormatBatchReply(const BatchReply& reply, const CounterRef& counter);
Result<BatchReply> ParseBatchReply(std::string_view body);

// POST /increment of many counters: true if the body is the JSON form (it
// mentions "increments") or the lines form (`content_type` is text/plain
// and the body is not a JSON object). A cheap test that never parses.
bool IsManyBody(std::string_view body, const std::vector<std::string>& content_types);
// Either form, 1 to ManyRequest::kMaxItems increments:
// - JSON: {"increments":[{"counter":"c:1","value":5},...],"window":W}, a bad
//   item named by its index ("increments[3]: ...");
// - lines (`lines` true): `COUNTER VALUE` per line (spaces or tabs between,
//   \r\n or \n), blank lines skipped, a bad one named by its number ("line 3: ...").
// `window_param` (the ?window= query parameter) applies to all; with the
// JSON form it may be given there or in the body, not both. Idempotency-Key
// headers as in ParseIncrementRequest.
Result<ManyRequest> ParseManyRequest(std::string_view body, bool lines,
                                     const std::optional<std::string>& window_param,
                                     const std::vector<std::string>& key_headers);
// The lines form of `request`'s items (what inc --stdin and the aggregator's
// shard clients send), appended to *out; the window goes in the query.
void FormatManyLines(const ManyRequest& request, std::string* out);
// A shard's answer: {"shardId":k,"applied":n}, plus "windowEnd" when windowed.
std::string FormatManyShareReply(const ManyReply& reply);
Result<ManyReply> ParseManyShareReply(std::string_view body);
// The aggregator's answer: {"applied":N,"parts":[{"shardId":i,"applied":n},...]},
// plus "windowEnd" when windowed.
std::string FormatManyReply(const ManyBatchReply& reply);
Result<ManyBatchReply> ParseManyReply(std::string_view body);

// {"success":true,"shardId":1,"count":1}, plus "counter" unless it is the
// default counter, plus "window" and "windowEnd" for a windowed one.
std::string FormatIncrementReply(const IncrementReply& reply, const CounterRef& counter);
Result<IncrementReply> ParseIncrementReply(std::string_view body);

// The ?counter=NAME&window=W query parameters (each may be absent).
Result<CounterRef> ParseCounterQuery(const std::optional<std::string>& counter,
                                     const std::optional<std::string>& window);
// "?counter=NAME&window=W" for `counter`, or "" for the default counter.
std::string CounterQueryString(const CounterRef& counter);

// A shard's GET /count: {"shardId":1,"count":1}, with "counter", "window" and
// "windowEnd" as in FormatIncrementReply.
std::string FormatCountReply(const CountReply& reply, const CounterRef& counter);
Result<CountReply> ParseCountReply(std::string_view body);

// The aggregator's GET /total: {"total":1}, with "counter", "window" and
// "windowEnd" as in FormatIncrementReply, and with `per_shard`, "shards":
// [{"shardId":0,"count":c},...] (a missing part's count is null). A partial
// total adds "partial":true|false and "missing":[{"shardId":1,"error":"..."}].
std::string FormatTotalReply(const TotalReply& reply, const CounterRef& counter, bool per_shard);
Result<TotalReply> ParseTotalReply(std::string_view body);

// The aggregator's GET /shards: {"routing":"value","shards":[{"shardId":0,
// "address":"http://...","state":"up"|"down","since":T,"lastError":"..."|null,
// "count":c|null},...]}.
std::string FormatShardStates(Routing routing, const std::vector<ShardState>& states);
Result<std::vector<ShardState>> ParseShardStates(std::string_view body);

// A shard's GET /counters?prefix=P:
// {"shardId":k,"counters":[{"counter":"a","count":1},...]}.
std::string FormatCounterParts(int shard_id, const std::vector<CounterPart>& parts);
Result<std::vector<CounterPart>> ParseCounterParts(std::string_view body);

// What a shard's GET /counters asks for: every part with the prefix (no
// limit: the whole listing of old), a page by name (limit, after), or a
// page by count (order=count, limit, and after + afterCount for a cursor).
struct ShardListQuery {
  enum class Kind { kAll, kPage, kRank } kind = Kind::kAll;
  PageQuery page;  // kAll and kPage (kAll uses its prefix only)
  RankQuery rank;  // kRank
};
inline constexpr size_t kMaxShardPage = 100000;
Result<ShardListQuery> ParseShardListQuery(const std::optional<std::string>& prefix,
                                           const std::optional<std::string>& order,
                                           const std::optional<std::string>& limit,
                                           const std::optional<std::string>& after,
                                           const std::optional<std::string>& after_count);
// The query strings ("?...") of a shard's page and rank page.
std::string PageQueryString(const PageQuery& query);
std::string RankQueryString(const RankQuery& query);

// A shard's POST /counts {"counters":["a","b"]} (1 to kMaxCountsNames plain
// counters) and its answer {"shardId":k,"counts":[1,0]}, in the same order.
inline constexpr size_t kMaxCountsNames = 10000;
Result<std::vector<std::string>> ParseCountsRequest(std::string_view body);
std::string FormatCountsRequest(const std::vector<std::string>& names);
std::string FormatCountsReply(int shard_id, const std::vector<int64_t>& counts);
Result<std::vector<int64_t>> ParseCountsReply(std::string_view body);

// The aggregator's GET /counters?prefix=&top=&limit=&after= parameters.
Result<ListQuery> ParseListQuery(const std::optional<std::string>& prefix,
                                 const std::optional<std::string>& top,
                                 const std::optional<std::string>& limit,
                                 const std::optional<std::string>& after);
std::string ListQueryString(const ListQuery& query);
// {"counters":[{"counter":"a","total":5},...]}, plus "next":"a" when another
// page follows.
std::string FormatCounterList(const CounterList& list);
Result<CounterList> ParseCounterList(std::string_view body);

// POST /reset: {"counter":"name"} (required).
Result<std::string> ParseResetRequest(std::string_view body);
std::string FormatResetRequest(const std::string& name);
// {"counter":"name","removed":T}
std::string FormatResetReply(const std::string& name, int64_t removed);
Result<int64_t> ParseResetReply(std::string_view body);

// {"error":"<message>"}, with the message escaped as JSON requires.
std::string FormatError(std::string_view message);
// Returns the "error" field of an error reply; for any other body, the body
// itself, cut to a readable length (so a proxy's HTML page still says something).
std::string ParseErrorMessage(std::string_view body);

}  // namespace shardctl::core

#endif  // SHARDCTL_CORE_PROTOCOL_H_
