#include "net/shard_server.h"

#include "core/protocol.h"

namespace shardctl::net {

void RegisterShardRoutes(core::Shard& shard, HttpServer& server) {
  server.Handle("POST", "/increment", [&shard](const HttpRequest& request) -> HttpResponse {
    core::Result<core::IncrementRequest> parsed = core::ParseIncrementRequest(request.body());
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    core::Result<core::IncrementReply> reply = shard.Increment(parsed->value);
    if (!reply.ok()) return ErrorResponse(reply.status());
    return {200, core::FormatIncrementReply(*reply)};
  });
  server.Handle("GET", "/count", [&shard](const HttpRequest&) -> HttpResponse {
    return {200, core::FormatCountReply(shard.id(), shard.Count())};
  });
  server.Handle("GET", "/healthz", [](const HttpRequest&) -> HttpResponse {
    return {200, R"({"status":"ok"})"};
  });
}

}  // namespace shardctl::net
