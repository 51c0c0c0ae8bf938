#include "net/node_count_client.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/protocol.h"
#include "net/http_shard_client.h"
#include "net/url.h"

namespace shardctl::net {

HttpClient* NodeCountClient::ClientFor(const std::string& address) {
  std::lock_guard lock(mutex_);
  std::unique_ptr<HttpClient>& client = clients_[address];
  if (!client) {
    core::Result<Url> url = ParseUrl(address);
    if (!url.ok()) return nullptr;
    client = std::make_unique<HttpClient>(*url, options_);
  }
  return client.get();
}

core::Result<std::vector<core::Result<core::CountReply>>> NodeCountClient::Count(
    const std::string& address, const std::vector<core::ShardAtEpoch>& shards,
    const core::CounterRef& counter) {
  HttpClient* client = ClientFor(address);
  if (client == nullptr) return core::Unavailable(fmt::format("{} is not a node's URL", address));
  core::Result<HttpReply> reply =
      client->Get("/count" + core::CounterQueryString(counter),
                  {{std::string(kEpochHeader), core::FormatShardEpochs(shards)}});
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) {
    return core::Status(core::Code::kBadGateway,
                        fmt::format("node {} answered {}: {}", address, reply->status,
                                    core::ParseErrorMessage(reply->body)));
  }
  using Json = nlohmann::json;
  Json json = Json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("parts") || !json["parts"].is_array() ||
      json["parts"].size() != shards.size()) {
    return core::Status(core::Code::kBadGateway,
                        fmt::format("node {} answered a count that is not what was asked", address));
  }
  std::vector<core::Result<core::CountReply>> parts;
  for (size_t i = 0; i < shards.size(); ++i) {
    const Json& part = json["parts"][i];
    if (part.value("shardId", -1) != shards[i].shard || !part.contains("count") ||
        !part["count"].is_number_integer()) {
      parts.push_back(core::Status(core::Code::kMoved, part.value("error", std::string("moved"))));
      continue;
    }
    parts.push_back(core::CountReply{.shard_id = shards[i].shard,
                                     .count = part["count"].get<int64_t>(),
                                     .window_end = part.value("windowEnd", int64_t{0})});
  }
  return parts;
}

}  // namespace shardctl::net
