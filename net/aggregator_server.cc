#include "net/aggregator_server.h"

#include "core/idempotency_key.h"
#include "core/protocol.h"
#include "net/dashboard.h"

namespace shardctl::net {
namespace {

// A yes/no query parameter: absent, "false" or "0" is no; "true" or "1" is yes.
core::Result<bool> ParseFlagParam(const std::optional<std::string>& text, std::string_view name) {
  if (!text || *text == "false" || *text == "0") return false;
  if (*text == "true" || *text == "1") return true;
  return core::InvalidArgument("the parameter " + std::string(name) + " must be true or false");
}

HttpResponse IncrementBatch(core::Aggregator& aggregator, const core::BatchRequest& batch) {
  return Respond(aggregator.IncrementBatch(batch), [&](const core::BatchReply& reply) {
    return core::FormatBatchReply(reply, batch.counter);
  });
}

// The body of a batch of many counters, parsed; nullopt if the request is
// another form of POST /increment.
std::optional<core::Result<core::ManyRequest>> ParseMany(const HttpRequest& request) {
  std::vector<std::string> types = request.HeaderValues("Content-Type");
  if (!core::IsManyBody(request.body(), types)) return std::nullopt;
  const bool lines = request.body().find("\"increments\"") == std::string_view::npos;
  return core::ParseManyRequest(request.body(), lines, request.Param("window"),
                                request.HeaderValues(std::string(core::kIdempotencyKeyHeader)));
}

HttpResponse IncrementMany(core::Aggregator& aggregator, const core::ManyRequest& many) {
  return Respond(aggregator.IncrementMany(many), core::FormatManyReply);
}

}  // namespace

void RegisterAggregatorRoutes(core::Aggregator& aggregator, HttpServer& server,
                              AggregatorWaits waits) {
  if (waits == AggregatorWaits::kNever) {
    server.HandleAsync(
        "POST", "/increment", [&aggregator](const HttpRequest& request, HttpResponder respond) {
          if (auto many = ParseMany(request)) {
            if (!many->ok()) return respond(ErrorResponse(many->status()));
            aggregator.RunBlocking([&aggregator, respond, many = std::move(*many).value()] {
              respond(IncrementMany(aggregator, many));
            });
            return;
          }
          std::vector<std::string> keys =
              request.HeaderValues(std::string(core::kIdempotencyKeyHeader));
          if (core::IsBatchBody(request.body())) {
            core::Result<core::BatchRequest> batch = core::ParseBatchRequest(request.body(), keys);
            if (!batch.ok()) return respond(ErrorResponse(batch.status()));
            aggregator.RunBlocking([&aggregator, respond, batch = *std::move(batch)] {
              respond(IncrementBatch(aggregator, batch));
            });
            return;
          }
          core::Result<core::IncrementRequest> parsed =
              core::ParseIncrementRequest(request.body(), keys);
          if (!parsed.ok()) return respond(ErrorResponse(parsed.status()));
          aggregator.IncrementAsync(*parsed, [respond, counter = parsed->counter](
                                                 core::Result<core::IncrementReply> reply) {
            respond(Respond(reply, [&](const core::IncrementReply& answer) {
              return core::FormatIncrementReply(answer, counter);
            }));
          });
        });
  } else {
    server.Handle("POST", "/increment", [&aggregator](const HttpRequest& request) {
      if (auto many = ParseMany(request)) {
        if (!many->ok()) return ErrorResponse(many->status());
        return IncrementMany(aggregator, **many);
      }
      if (core::IsBatchBody(request.body())) {
        core::Result<core::BatchRequest> batch = core::ParseBatchRequest(
            request.body(), request.HeaderValues(std::string(core::kIdempotencyKeyHeader)));
        if (!batch.ok()) return ErrorResponse(batch.status());
        return IncrementBatch(aggregator, *batch);
      }
      core::Result<core::IncrementRequest> parsed = core::ParseIncrementRequest(
          request.body(), request.HeaderValues(std::string(core::kIdempotencyKeyHeader)));
      if (!parsed.ok()) return ErrorResponse(parsed.status());
      return Respond(aggregator.Increment(*parsed), [&](const core::IncrementReply& reply) {
        return core::FormatIncrementReply(reply, parsed->counter);
      });
    });
  }
  // The rest asks shards and waits: on the loop, or on the server's pool.
  auto handle = [&server, waits](const std::string& method, const std::string& path,
                                 HttpHandler handler) {
    if (waits == AggregatorWaits::kNever) {
      server.HandleBlocking(method, path, std::move(handler));
    } else {
      server.Handle(method, path, std::move(handler));
    }
  };
  handle("GET", "/total", [&aggregator](const HttpRequest& request) {
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
  handle("GET", "/counters", [&aggregator](const HttpRequest& request) {
    core::Result<core::ListQuery> query =
        core::ParseListQuery(request.Param("prefix"), request.Param("top"), request.Param("limit"),
                             request.Param("after"));
    if (!query.ok()) return ErrorResponse(query.status());
    return Respond(aggregator.List(*query), core::FormatCounterList);
  });
  handle("POST", "/reset", [&aggregator](const HttpRequest& request) {
    core::Result<std::string> name = core::ParseResetRequest(request.body());
    if (!name.ok()) return ErrorResponse(name.status());
    return Respond(aggregator.Reset(*name),
                   [&](int64_t removed) { return core::FormatResetReply(*name, removed); });
  });
  handle("GET", "/shards", [&aggregator](const HttpRequest&) {
    return HttpResponse{200, core::FormatShardStates(aggregator.routing(), aggregator.Shards())};
  });
  // The dashboard: a static page (open without the token, see serve), which
  // asks the routes above for its data.
  server.Handle("GET", "/", [](const HttpRequest&) {
    return HttpResponse{200, std::string(DashboardPage()), "text/html; charset=utf-8"};
  });
  server.Handle("GET", "/healthz", [](const HttpRequest&) {
    return HttpResponse{200, R"({"status":"ok"})"};
  });
}

}  // namespace shardctl::net
