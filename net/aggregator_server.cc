#include "net/aggregator_server.h"

#include "core/protocol.h"

namespace shardctl::net {

void RegisterAggregatorRoutes(core::Aggregator& aggregator, HttpServer& server) {
  server.Handle("POST", "/increment", [&aggregator](const HttpRequest& request) -> HttpResponse {
    core::Result<core::IncrementRequest> parsed = core::ParseIncrementRequest(request.body());
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    core::Result<core::IncrementReply> reply = aggregator.Increment(parsed->value);
    if (!reply.ok()) return ErrorResponse(reply.status());
    return {200, core::FormatIncrementReply(*reply)};
  });
  server.Handle("GET", "/total", [&aggregator](const HttpRequest&) -> HttpResponse {
    core::Result<int64_t> total = aggregator.Total();
    if (!total.ok()) return ErrorResponse(total.status());
    return {200, core::FormatTotalReply(*total)};
  });
  server.Handle("GET", "/healthz", [](const HttpRequest&) -> HttpResponse {
    return {200, R"({"status":"ok"})"};
  });
}

}  // namespace shardctl::net
