#include "net/node_server.h"

#include <charconv>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/cluster_counter.h"
#include "core/idempotency_key.h"
#include "core/protocol.h"
#include "core/record.h"
#include "net/http_shard_client.h"
#include "net/replica_client.h"
#include "net/shard_server.h"
#include "net/url.h"

namespace shardctl::net {
namespace {

using Json = nlohmann::json;

core::Result<int64_t> EpochOf(const HttpRequest& request) {
  std::vector<std::string> values = request.HeaderValues(std::string(kEpochHeader));
  if (values.size() != 1) {
    return core::InvalidArgument(fmt::format(
        "a request to a cluster node names the epoch it was routed by, once, in the {} header",
        kEpochHeader));
  }
  int64_t epoch = -1;
  const std::string& text = values.front();
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), epoch);
  if (error != std::errc() || end != text.data() + text.size() || epoch < 0) {
    return core::InvalidArgument(
        fmt::format("{} must be a non-negative integer, not '{}'", kEpochHeader, text));
  }
  return epoch;
}

std::string EncodeRecords(const std::vector<core::Record>& records) {
  std::string out;
  for (const core::Record& record : records) core::EncodeRecord(record, &out);
  return out;
}

// A move step's body: {"from":"http://host:port","epoch":E}.
struct Step {
  Url from;
  int64_t epoch = 0;
};

core::Result<Step> ParseStep(std::string_view body) {
  Json json = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("from") || !json["from"].is_string() ||
      !json.contains("epoch") || !json["epoch"].is_number_integer()) {
    return core::InvalidArgument(
        R"(a move step's body is {"from":"http://HOST:PORT","epoch":E})");
  }
  core::Result<Url> from = ParseUrl(json["from"].get<std::string>());
  if (!from.ok()) return from.status();
  return Step{*from, json["epoch"].get<int64_t>()};
}

// Asks the node the shard leaves for `what` ("snapshot" or "seal") and
// decodes the records it answers.
core::Result<std::vector<core::Record>> Pull(const Step& step, int shard, const char* what,
                                             const HttpClientOptions& options) {
  HttpClient peer(step.from, options);
  core::Result<HttpReply> reply =
      peer.Post(fmt::format("/shards/{}/{}", shard, what), "",
                {{std::string(kEpochHeader), std::to_string(step.epoch)}});
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) {
    return core::Status(reply->status == 421 ? core::Code::kMoved : core::Code::kBadGateway,
                        fmt::format("{} answered {} to {}: {}", step.from.ToString(),
                                    reply->status, what, core::ParseErrorMessage(reply->body)));
  }
  core::Result<core::Scan> scan = core::ScanRecords(reply->body);
  if (!scan.ok()) return scan.status();
  if (scan->torn_tail) {
    return core::Status(core::Code::kBadGateway,
                        fmt::format("the {} from {} was cut short", what, step.from.ToString()));
  }
  return std::move(scan->records);
}

HttpResponse Records(const core::Result<std::vector<core::Record>>& records) {
  if (!records.ok()) return ErrorResponse(records.status());
  return {200, EncodeRecords(*records)};
}

// A query parameter that must be a non-negative integer.
core::Result<uint64_t> NumberParam(const HttpRequest& request, const char* name) {
  std::optional<std::string> text = request.Param(name);
  uint64_t value = 0;
  if (text) {
    auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (error == std::errc() && end == text->data() + text->size()) return value;
  }
  return core::InvalidArgument(fmt::format("{} must be a non-negative integer", name));
}

HttpResponse ReplicationError(const core::Status& status) {
  HttpResponse response = ErrorResponse(status);
  if (status.code() == core::Code::kOutOfRange) response.status = 409;  // start from a snapshot
  return response;
}

HttpResponse Done(const core::Status& status, const std::string& body) {
  if (!status.ok()) return ErrorResponse(status);
  return {200, body};
}

}  // namespace

void RegisterNodeRoutes(core::HostedShards& shards, NodeRoutesOptions options,
                        HttpServer& server) {
  auto shared = std::make_shared<NodeRoutesOptions>(std::move(options));
  for (int k = 0; k < shared->shard_count; ++k) {
    const std::string base = fmt::format("/shards/{}", k);
    // With replication a change waits for the followers' fetches: never on a loop.
    auto handle_change = [&server, replicated = shared->replicated](const std::string& path,
                                                                    HttpHandler handler) {
      if (replicated) {
        server.HandleBlocking("POST", path, std::move(handler));
      } else {
        server.Handle("POST", path, std::move(handler));
      }
    };
    if (shared->replicated) {
      // On a replicated primary an increment is answered once its followers
      // fetched it: no thread waits meanwhile (Shard::IncrementThen).
      server.HandleAsync("POST", base + "/increment",
                         [&shards, k](const HttpRequest& request, HttpResponder respond) {
        core::Result<int64_t> epoch = EpochOf(request);
        if (!epoch.ok()) return respond(ErrorResponse(epoch.status()));
        core::Result<core::IncrementRequest> parsed = core::ParseIncrementRequest(
            request.body(), request.HeaderValues(std::string(core::kIdempotencyKeyHeader)));
        if (!parsed.ok()) return respond(ErrorResponse(parsed.status()));
        auto counter = std::make_shared<core::CounterRef>(parsed->counter);
        core::Status served = shards.IncrementThen(
            k, *epoch, *parsed, [respond, counter](core::Result<core::IncrementReply> reply) {
              respond(Respond(reply, [&](const core::IncrementReply& done) {
                return core::FormatIncrementReply(done, *counter);
              }));
            });
        if (!served.ok()) respond(ErrorResponse(served));
      });
    } else {
      server.Handle("POST", base + "/increment", [&shards, k](const HttpRequest& request) {
        core::Result<int64_t> epoch = EpochOf(request);
        if (!epoch.ok()) return ErrorResponse(epoch.status());
        core::Result<core::IncrementRequest> parsed = core::ParseIncrementRequest(
            request.body(), request.HeaderValues(std::string(core::kIdempotencyKeyHeader)));
        if (!parsed.ok()) return ErrorResponse(parsed.status());
        return Respond(shards.Serve<core::IncrementReply>(
                           k, *epoch, [&](core::Shard& shard) { return shard.Increment(*parsed); }),
                       [&](const core::IncrementReply& reply) {
                         return core::FormatIncrementReply(reply, parsed->counter);
                       });
      });
    }
    handle_change(base + "/increment-many", [&shards, k](const HttpRequest& request) {
      core::Result<int64_t> epoch = EpochOf(request);
      if (!epoch.ok()) return ErrorResponse(epoch.status());
      core::Result<core::ManyRequest> many = ParseManyShare(request);
      if (!many.ok()) return ErrorResponse(many.status());
      return Respond(shards.Serve<core::ManyReply>(
                         k, *epoch, [&](core::Shard& shard) { return shard.IncrementMany(*many); }),
                     core::FormatManyShareReply);
    });
    server.Handle("GET", base + "/count", [&shards, k](const HttpRequest& request) {
      core::Result<int64_t> epoch = EpochOf(request);
      if (!epoch.ok()) return ErrorResponse(epoch.status());
      core::Result<core::CounterRef> counter =
          core::ParseCounterQuery(request.Param("counter"), request.Param("window"));
      if (!counter.ok()) return ErrorResponse(counter.status());
      return Respond(shards.Count(k, *epoch, *counter), [&](const core::CountReply& reply) {
        return core::FormatCountReply(reply, *counter);
      });
    });
    server.Handle("GET", base + "/counters", [&shards, k](const HttpRequest& request) {
      core::Result<int64_t> epoch = EpochOf(request);
      if (!epoch.ok()) return ErrorResponse(epoch.status());
      core::Result<core::ShardListQuery> query = ParseShardListQuery(request);
      if (!query.ok()) return ErrorResponse(query.status());
      return Respond(shards.Serve<std::vector<core::CounterPart>>(
                         k, *epoch, [&](core::Shard& shard) { return ListShard(shard, *query); }),
                     [k](const std::vector<core::CounterPart>& parts) {
                       return core::FormatCounterParts(k, parts);
                     });
    });
    server.Handle("POST", base + "/counts", [&shards, k](const HttpRequest& request) {
      core::Result<int64_t> epoch = EpochOf(request);
      if (!epoch.ok()) return ErrorResponse(epoch.status());
      core::Result<std::vector<std::string>> names = core::ParseCountsRequest(request.body());
      if (!names.ok()) return ErrorResponse(names.status());
      return Respond(
          shards.Serve<std::vector<int64_t>>(
              k, *epoch, [&](core::Shard& shard) { return shard.Counts(*names); }),
          [k](const std::vector<int64_t>& counts) { return core::FormatCountsReply(k, counts); });
    });
    handle_change(base + "/reset", [&shards, k](const HttpRequest& request) {
      core::Result<int64_t> epoch = EpochOf(request);
      if (!epoch.ok()) return ErrorResponse(epoch.status());
      core::Result<std::string> name = core::ParseResetRequest(request.body());
      if (!name.ok()) return ErrorResponse(name.status());
      return Respond(
          shards.Serve<int64_t>(k, *epoch, [&](core::Shard& shard) { return shard.Reset(*name); }),
          [&](int64_t removed) { return core::FormatResetReply(*name, removed); });
    });
    // A move, on the node the shard leaves. Copying a large shard takes a
    // while, so these steps run on the server's blocking threads, never on
    // a loop that serves other shards' writes.
    server.HandleBlocking("POST", base + "/snapshot", [&shards, k](const HttpRequest& request) {
      core::Result<int64_t> epoch = EpochOf(request);
      if (!epoch.ok()) return ErrorResponse(epoch.status());
      return Records(shards.StartCopy(k, *epoch));
    });
    server.Handle("POST", base + "/seal", [&shards, k](const HttpRequest& request) {
      core::Result<int64_t> epoch = EpochOf(request);
      if (!epoch.ok()) return ErrorResponse(epoch.status());
      return Records(shards.Seal(k, *epoch));
    });
    // A move, on the node it goes to: each waits on the node it comes from.
    server.HandleBlocking("POST", base + "/fetch", [&shards, k, shared](const HttpRequest& request) {
      core::Result<Step> step = ParseStep(request.body());
      if (!step.ok()) return ErrorResponse(step.status());
      core::Result<std::vector<core::Record>> snapshot = Pull(*step, k, "snapshot", shared->peer);
      if (!snapshot.ok()) return ErrorResponse(snapshot.status());
      return Done(shards.Stage(k, step->epoch, *snapshot),
                  Json{{"shard", k}, {"records", snapshot->size()}}.dump());
    });
    server.HandleBlocking("POST", base + "/catch-up", [&shards, k, shared](const HttpRequest& request) {
      core::Result<Step> step = ParseStep(request.body());
      if (!step.ok()) return ErrorResponse(step.status());
      core::Result<std::vector<core::Record>> changes = Pull(*step, k, "seal", shared->peer);
      if (!changes.ok()) return ErrorResponse(changes.status());
      return Done(shards.CatchUp(k, step->epoch, *changes),
                  Json{{"shard", k}, {"records", changes->size()}}.dump());
    });
    server.HandleBlocking("POST", base + "/reconcile", [k, shared](const HttpRequest&) {
      return Done(shared->reconcile(k), Json{{"shard", k}}.dump());
    });
    // Replication, on the primary: a follower starts from a snapshot (a
    // while, for a large shard), then fetches.
    server.HandleBlocking("POST", base + "/follow", [&shards, k](const HttpRequest& request) {
      core::Result<int64_t> epoch = EpochOf(request);
      if (!epoch.ok()) return ErrorResponse(epoch.status());
      Json json = Json::parse(request.body(), nullptr, /*allow_exceptions=*/false);
      if (!json.is_object() || !json.contains("node") || !json["node"].is_string()) {
        return ErrorResponse(core::InvalidArgument(R"(a follow's body is {"node":"ID"})"));
      }
      core::Result<core::HostedShards::FollowerStart> start =
          shards.StartFollower(k, *epoch, json["node"].get<std::string>());
      if (!start.ok()) return ReplicationError(start.status());
      return HttpResponse{200, FormatFollowerStart(start->log_id, start->next) +
                                   EncodeRecords(start->snapshot)};
    });
    server.HandleAsync("GET", base + "/replicate",
                       [&shards, k](const HttpRequest& request, HttpResponder respond) {
      core::Result<int64_t> epoch = EpochOf(request);
      core::Result<uint64_t> log = NumberParam(request, "log");
      core::Result<uint64_t> from = NumberParam(request, "from");
      core::Result<uint64_t> wait = NumberParam(request, "wait");
      std::optional<std::string> node = request.Param("node");
      for (const core::Status& status : {epoch.status(), log.status(), from.status(), wait.status()}) {
        if (!status.ok()) return respond(ErrorResponse(status));
      }
      if (!node || node->empty()) {
        return respond(ErrorResponse(core::InvalidArgument("a fetch names its node: node=ID")));
      }
      shards.Fetch(k, *epoch, *node, *log, *from,
                   std::chrono::milliseconds(std::min<uint64_t>(*wait, 10000)),
                   [respond](core::Result<core::ReplicaBatch> batch) {
                     if (!batch.ok()) return respond(ReplicationError(batch.status()));
                     respond(HttpResponse{200, FormatBatchStart(batch->first) +
                                                   EncodeRecords(batch->records)});
                   });
    });
    server.HandleBlocking("POST", base + "/promote", [k, shared](const HttpRequest&) {
      if (!shared->promote) {
        return ErrorResponse(core::InvalidArgument("this node's cluster is not replicated"));
      }
      core::Result<int64_t> epoch = shared->promote(k);
      if (!epoch.ok()) return ErrorResponse(epoch.status());
      return HttpResponse{200, Json{{"shard", k}, {"epoch", *epoch}}.dump()};
    });
  }
  // Every shard the request names, with the epoch it was routed by
  // ("Shardctl-Epoch: 0=3,4=2"), at once: a total asks each node once.
  server.Handle("GET", "/count", [&shards](const HttpRequest& request) {
    core::Result<std::vector<core::ShardAtEpoch>> asked =
        core::ParseShardEpochs(request.HeaderValues(std::string(kEpochHeader)));
    if (!asked.ok()) return ErrorResponse(asked.status());
    core::Result<core::CounterRef> counter =
        core::ParseCounterQuery(request.Param("counter"), request.Param("window"));
    if (!counter.ok()) return ErrorResponse(counter.status());
    Json parts = Json::array();
    for (const core::ShardAtEpoch& one : *asked) {
      core::Result<core::CountReply> count = shards.Count(one.shard, one.epoch, *counter);
      Json part = {{"shardId", one.shard}, {"epoch", one.epoch}};
      if (count.ok()) {
        part["count"] = count->count;
        part["windowEnd"] = count->window_end;
      } else {
        part["error"] = count.status().message();
        part["code"] = HttpStatusFor(count.status().code());
      }
      parts.push_back(std::move(part));
    }
    return HttpResponse{200, Json{{"parts", parts}}.dump()};
  });
  server.Handle("GET", "/node", [&shards](const HttpRequest&) {
    std::map<int, Json> followers;  // a primary's, with how far behind each is
    for (const core::HostedShards::PrimaryLog& primary : shards.PrimaryLogs()) {
      Json list = Json::array();
      for (const core::FollowerProgress& follower : primary.log->Progress()) {
        list.push_back({{"node", follower.node},
                        {"behind", follower.behind},
                        {"required", follower.required}});
      }
      followers[primary.shard] = std::move(list);
    }
    Json held = Json::array();
    for (const core::HeldShard& shard : shards.List()) {
      Json entry = {{"shard", shard.shard},
                    {"state", std::string(core::HoldStateName(shard.state))},
                    {"epoch", shard.epoch}};
      if (auto it = followers.find(shard.shard); it != followers.end()) {
        entry["followers"] = it->second;
      }
      held.push_back(std::move(entry));
    }
    return HttpResponse{200, Json{{"id", shards.me()}, {"shards", held}}.dump()};
  });
  server.Handle("GET", "/healthz", [](const HttpRequest&) {
    return HttpResponse{200, R"({"status":"ok"})"};
  });
}

}  // namespace shardctl::net
