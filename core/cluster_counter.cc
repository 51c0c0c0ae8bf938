#include "core/cluster_counter.h"

#include <charconv>
#include <future>
#include <map>
#include <optional>

namespace shardctl::core {

std::string FormatShardEpochs(const std::vector<ShardAtEpoch>& shards) {
  std::string text;
  for (const ShardAtEpoch& one : shards) {
    if (!text.empty()) text += ',';
    text += std::to_string(one.shard) + '=' + std::to_string(one.epoch);
  }
  return text;
}

Result<std::vector<ShardAtEpoch>> ParseShardEpochs(const std::vector<std::string>& values) {
  const Status bad = InvalidArgument(
      "a node-wide count names each shard and the epoch it was routed by, once, in one "
      "Shardctl-Epoch header: 0=3,4=2");
  if (values.size() != 1 || values.front().empty() || values.front().back() == ',') return bad;
  std::vector<ShardAtEpoch> shards;
  std::string_view rest = values.front();
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    size_t equals = item.find('=');
    if (equals == std::string_view::npos) return bad;
    ShardAtEpoch one;
    auto parse = [](std::string_view text, auto& out) {
      auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
      return error == std::errc() && end == text.data() + text.size() && !text.empty() &&
             out >= 0;
    };
    if (!parse(item.substr(0, equals), one.shard) || !parse(item.substr(equals + 1), one.epoch) ||
        one.shard >= kMaxClusterShards || shards.size() >= kMaxClusterShards) {
      return bad;
    }
    shards.push_back(one);
  }
  if (shards.empty()) return bad;
  return shards;
}

ClusterCounter::ClusterCounter(TopologyView& view, NodeCount node_count,
                               std::vector<ShardClient*> single)
    : view_(view), node_count_(std::move(node_count)), single_(std::move(single)) {}

std::vector<Result<CountReply>> ClusterCounter::CountEveryShard(const CounterRef& counter) {
  const int shards = static_cast<int>(single_.size());
  std::vector<std::optional<Result<CountReply>>> parts(shards);
  std::map<std::string, std::vector<ShardAtEpoch>> by_node;
  if (std::shared_ptr<const Topology> topology = view_.Get()) {
    for (int k = 0; k < shards && k < static_cast<int>(topology->shard.size()); ++k) {
      const ShardPlacement& placement = topology->shard[k];
      if (const NodeInfo* node = topology->FindNode(placement.owner)) {
        by_node[node->address].push_back({k, placement.epoch});
      }
    }
  }
  // Each node once, in parallel; the first on this thread.
  std::vector<std::pair<const std::vector<ShardAtEpoch>*,
                        std::future<Result<std::vector<Result<CountReply>>>>>>
      asked;
  for (const auto& node : by_node) {  // (clang 14 cannot capture structured bindings)
    asked.emplace_back(&node.second, std::async(std::launch::async, [this, &node, &counter] {
                         return node_count_(node.first, node.second, counter);
                       }));
  }
  for (auto& [on_node, future] : asked) {
    Result<std::vector<Result<CountReply>>> answer = future.get();
    if (!answer.ok() || answer->size() != on_node->size()) continue;
    for (size_t i = 0; i < on_node->size(); ++i) {
      const Result<CountReply>& part = (*answer)[i];
      if (part.ok()) parts[(*on_node)[i].shard] = part;
    }
  }
  // The rest, each on its own: it follows a move or reports why it failed.
  std::vector<std::pair<int, std::future<Result<CountReply>>>> alone;
  for (int k = 0; k < shards; ++k) {
    if (!parts[k]) {
      alone.emplace_back(k, std::async(std::launch::async, [this, k, &counter] {
                           return single_[k]->Count(counter);
                         }));
    }
  }
  for (auto& [k, future] : alone) parts[k] = future.get();
  std::vector<Result<CountReply>> results;
  results.reserve(shards);
  for (std::optional<Result<CountReply>>& part : parts) results.push_back(std::move(*part));
  return results;
}

}  // namespace shardctl::core
