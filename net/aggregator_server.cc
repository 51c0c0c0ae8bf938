#include "net/aggregator_server.h"

#include "core/idempotency_key.h"
#include "core/protocol.h"

namespace shardctl::net {
namespace {

// A yes/no query parameter: absent, "false" or "0" is no; "true" or "1" is yes.
core::Result<bool> ParseFlagParam(const std::optional<std::string>& text, std::string_view name) {
  if (!text || *text == "false" || *text == "0") return false;
  if (*text == "true" || *text == "1") return true;
  return core::InvalidArgument("the parameter " + std::string(name) + " must be true or false");
}

}  // namespace

void RegisterAggregatorRoutes(core::Aggregator& aggregator, HttpServer& server) {
  server.Handle("POST", "/increment", [&aggregator](const HttpRequest& request) {
    if (core::IsBatchBody(request.body())) {
      core::Result<core::BatchRequest> batch = core::ParseBatchRequest(
          request.body(), request.HeaderValues(std::string(core::kIdempotencyKeyHeader)));
      if (!batch.ok()) return ErrorResponse(batch.status());
      return Respond(aggregator.IncrementBatch(*batch), [&](const core::BatchReply& reply) {
        return core::FormatBatchReply(reply, batch->counter);
      });
    }
    core::Result<core::IncrementRequest> parsed = core::ParseIncrementRequest(
        request.body(), request.HeaderValues(std::string(core::kIdempotencyKeyHeader)));
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    return Respond(aggregator.Increment(*parsed), [&](const core::IncrementReply& reply) {
      return core::FormatIncrementReply(reply, parsed->counter);
    });
  });
  server.Handle("GET", "/total", [&aggregator](const HttpRequest& request) {
    core::Result<core::CounterRef> counter =
        core::ParseCounterQuery(request.Param("counter"), request.Param("window"));
    if (!counter.ok()) return ErrorResponse(counter.status());
    core::Result<bool> per_shard = ParseFlagParam(request.Param("perShard"), "perShard");
    if (!per_shard.ok()) return ErrorResponse(per_shard.status());
    core::Result<bool> partial = ParseFlagParam(request.Param("partial"), "partial");
    if (!partial.ok()) return ErrorResponse(partial.status());
    return Respond(aggregator.Total(*counter, *partial), [&](const core::TotalReply& reply) {
      return core::FormatTotalReply(reply, *counter, *per_shard);
    });
  });
  server.Handle("GET", "/counters", [&aggregator](const HttpRequest& request) {
    core::Result<core::ListQuery> query =
        core::ParseListQuery(request.Param("prefix"), request.Param("top"), request.Param("limit"),
                             request.Param("after"));
    if (!query.ok()) return ErrorResponse(query.status());
    return Respond(aggregator.List(*query), core::FormatCounterList);
  });
  server.Handle("POST", "/reset", [&aggregator](const HttpRequest& request) {
    core::Result<std::string> name = core::ParseResetRequest(request.body());
    if (!name.ok()) return ErrorResponse(name.status());
    return Respond(aggregator.Reset(*name),
                   [&](int64_t removed) { return core::FormatResetReply(*name, removed); });
  });
  server.Handle("GET", "/shards", [&aggregator](const HttpRequest&) {
    return HttpResponse{200, core::FormatShardStates(aggregator.routing(), aggregator.Shards())};
  });
  server.Handle("GET", "/healthz", [](const HttpRequest&) {
    return HttpResponse{200, R"({"status":"ok"})"};
  });
}

}  // namespace shardctl::net
