#include "net/shard_server.h"

#include "core/idempotency_key.h"
#include "core/protocol.h"

namespace shardctl::net {

core::Result<core::ShardListQuery> ParseShardListQuery(const HttpRequest& request) {
  return core::ParseShardListQuery(request.Param("prefix"), request.Param("order"),
                                   request.Param("limit"), request.Param("after"),
                                   request.Param("afterCount"));
}

core::Result<core::ManyRequest> ParseManyShare(const HttpRequest& request) {
  const bool lines = request.body().find("\"increments\"") == std::string_view::npos;
  return core::ParseManyRequest(request.body(), lines, request.Param("window"),
                                request.HeaderValues(std::string(core::kIdempotencyKeyHeader)));
}

std::vector<core::CounterPart> ListShard(const core::Shard& shard,
                                         const core::ShardListQuery& query) {
  switch (query.kind) {
    case core::ShardListQuery::Kind::kPage: return shard.ListPage(query.page);
    case core::ShardListQuery::Kind::kRank: return shard.Rank(query.rank);
    case core::ShardListQuery::Kind::kAll: break;
  }
  return shard.List(query.page.prefix);
}

void RegisterShardRoutes(core::Shard& shard, HttpServer& server) {
  server.Handle("POST", "/increment", [&shard](const HttpRequest& request) {
    core::Result<core::IncrementRequest> parsed = core::ParseIncrementRequest(
        request.body(), request.HeaderValues(std::string(core::kIdempotencyKeyHeader)));
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    return Respond(shard.Increment(*parsed), [&](const core::IncrementReply& reply) {
      return core::FormatIncrementReply(reply, parsed->counter);
    });
  });
  // A share of a batch of many counters, applied as a whole (the lines or
  // the JSON form of the aggregator's POST /increment).
  server.Handle("POST", "/increment-many", [&shard](const HttpRequest& request) {
    core::Result<core::ManyRequest> many = ParseManyShare(request);
    if (!many.ok()) return ErrorResponse(many.status());
    return Respond(shard.IncrementMany(*many), core::FormatManyShareReply);
  });
  server.Handle("GET", "/count", [&shard](const HttpRequest& request) {
    core::Result<core::CounterRef> counter =
        core::ParseCounterQuery(request.Param("counter"), request.Param("window"));
    if (!counter.ok()) return ErrorResponse(counter.status());
    return HttpResponse{200, core::FormatCountReply(shard.Count(*counter), *counter)};
  });
  server.Handle("GET", "/counters", [&shard](const HttpRequest& request) {
    core::Result<core::ShardListQuery> query = ParseShardListQuery(request);
    if (!query.ok()) return ErrorResponse(query.status());
    return HttpResponse{200, core::FormatCounterParts(shard.id(), ListShard(shard, *query))};
  });
  server.Handle("POST", "/counts", [&shard](const HttpRequest& request) {
    core::Result<std::vector<std::string>> names = core::ParseCountsRequest(request.body());
    if (!names.ok()) return ErrorResponse(names.status());
    return HttpResponse{200, core::FormatCountsReply(shard.id(), shard.Counts(*names))};
  });
  server.Handle("POST", "/reset", [&shard](const HttpRequest& request) {
    core::Result<std::string> name = core::ParseResetRequest(request.body());
    if (!name.ok()) return ErrorResponse(name.status());
    return Respond(shard.Reset(*name),
                   [&](int64_t removed) { return core::FormatResetReply(*name, removed); });
  });
  server.Handle("GET", "/healthz", [](const HttpRequest&) {
    return HttpResponse{200, R"({"status":"ok"})"};
  });
}

}  // namespace shardctl::net
