#include "net/move_client.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/protocol.h"
#include "net/url.h"

namespace shardctl::net {

core::Status HttpMoveSteps::Post(const core::NodeInfo& node, const std::string& path,
                                 const std::string& body) {
  core::Result<Url> url = ParseUrl(node.address);
  if (!url.ok()) return url.status();
  HttpClient client(*url, options_);
  core::Result<HttpReply> reply = client.Post(path, body);
  if (!reply.ok()) return reply.status();
  if (reply->status == 200) return {};
  return core::Status(reply->status == 421 ? core::Code::kMoved : core::Code::kBadGateway,
                      fmt::format("node {} answered {} to {}: {}", node.id, reply->status, path,
                                  core::ParseErrorMessage(reply->body)));
}

core::Status HttpMoveSteps::Fetch(const core::NodeInfo& to, int shard, const core::NodeInfo& from,
                                  int64_t epoch) {
  return Post(to, fmt::format("/shards/{}/fetch", shard),
              nlohmann::json{{"from", from.address}, {"epoch", epoch}}.dump());
}

core::Status HttpMoveSteps::CatchUp(const core::NodeInfo& to, int shard,
                                    const core::NodeInfo& from, int64_t epoch) {
  return Post(to, fmt::format("/shards/{}/catch-up", shard),
              nlohmann::json{{"from", from.address}, {"epoch", epoch}}.dump());
}

core::Status HttpMoveSteps::Reconcile(const core::NodeInfo& node, int shard) {
  return Post(node, fmt::format("/shards/{}/reconcile", shard), "");
}

}  // namespace shardctl::net
