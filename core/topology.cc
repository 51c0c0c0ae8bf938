#include "core/topology.h"

#include <algorithm>
#include <charconv>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace shardctl::core {
namespace {

using Json = nlohmann::json;

const std::string kClusterKey = std::string(kTopologyPrefix) + "cluster";
const std::string kNodesPrefix = std::string(kTopologyPrefix) + "nodes/";
const std::string kShardsPrefix = std::string(kTopologyPrefix) + "shards/";

// Parses `value` as a JSON object; a discarded Json when it is not one.
Json ParseObject(std::string_view value) {
  Json json = Json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
  return json.is_object() ? json : Json(Json::value_t::discarded);
}

Status Unreadable(std::string_view key, std::string_view value) {
  return InvalidArgument(fmt::format("{} holds {}, which is not what shardctl writes there", key,
                                     value.substr(0, 200)));
}

// The owner's load as PlanRebalance and PlanDrain weigh it.
struct Loads {
  std::map<std::string, int> by_node;  // every live node, with its shard count

  explicit Loads(const Topology& topology) {
    for (const NodeInfo& node : topology.nodes) by_node[node.id] = 0;
    for (const ShardPlacement& placement : topology.shard) {
      auto it = by_node.find(placement.owner);
      if (it != by_node.end()) ++it->second;
    }
  }
  // The least loaded node other than `except` that holds no copy of
  // `placement` (lowest id on a tie).
  std::string Lightest(std::string_view except, const ShardPlacement& placement) const {
    std::string best;
    int best_load = 0;
    for (const auto& [id, load] : by_node) {
      if (id == except || placement.HoldsCopy(id)) continue;
      if (best.empty() || load < best_load) best = id, best_load = load;
    }
    return best;
  }
};

}  // namespace

std::string ClusterKey() { return kClusterKey; }
std::string NodeKey(std::string_view node_id) { return kNodesPrefix + std::string(node_id); }
std::string ShardKey(int shard) { return kShardsPrefix + std::to_string(shard); }

const NodeInfo* Topology::FindNode(std::string_view id) const {
  for (const NodeInfo& node : nodes) {
    if (node.id == id) return &node;
  }
  return nullptr;
}

std::vector<int> Topology::Load() const {
  Loads loads(*this);
  std::vector<int> result;
  for (const NodeInfo& node : nodes) result.push_back(loads.by_node[node.id]);
  return result;
}

Status ValidateNodeId(std::string_view id) {
  if (id.empty() || id.size() > 128) {
    return InvalidArgument(fmt::format("a node id has 1 to 128 characters, not {}", id.size()));
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) {
      return InvalidArgument(fmt::format(
          "node id '{}' has '{}'; use letters, digits and . _ : - only", id, c));
    }
  }
  return {};
}

bool ShardPlacement::IsFollower(std::string_view node) const {
  return std::find(followers.begin(), followers.end(), node) != followers.end();
}

bool ShardPlacement::IsInSync(std::string_view node) const {
  return std::find(in_sync.begin(), in_sync.end(), node) != in_sync.end();
}

std::string EncodeClusterSpec(int shards, int replicas) {
  Json json = {{"shards", shards}};
  if (replicas > 1) json["replicas"] = replicas;  // an R = 1 cluster reads as before
  return json.dump();
}

std::string EncodeNode(const NodeInfo& node) { return Json{{"address", node.address}}.dump(); }

std::string EncodePlacement(const ShardPlacement& placement) {
  Json json = {{"owner", placement.owner}, {"epoch", placement.epoch}};
  if (!placement.moving_to.empty()) json["movingTo"] = placement.moving_to;
  if (!placement.followers.empty()) json["followers"] = placement.followers;
  if (!placement.in_sync.empty()) json["inSync"] = placement.in_sync;
  return json.dump();
}

Result<ClusterSpec> DecodeClusterSpec(std::string_view value) {
  Json json = ParseObject(value);
  if (json.is_discarded() || !json.contains("shards") || !json["shards"].is_number_integer() ||
      (json.contains("replicas") && !json["replicas"].is_number_integer())) {
    return Unreadable(kClusterKey, value);
  }
  auto shards = json["shards"].get<int64_t>();
  auto replicas = json.value("replicas", int64_t{1});
  if (shards < 1 || shards > kMaxClusterShards || replicas < 1 || replicas > kMaxReplicas) {
    return Unreadable(kClusterKey, value);
  }
  return ClusterSpec{static_cast<int>(shards), static_cast<int>(replicas)};
}

Result<NodeInfo> DecodeNode(std::string_view node_id, std::string_view value) {
  Json json = ParseObject(value);
  if (json.is_discarded() || !json.contains("address") || !json["address"].is_string()) {
    return Unreadable(NodeKey(node_id), value);
  }
  return NodeInfo{std::string(node_id), json["address"].get<std::string>()};
}

Result<ShardPlacement> DecodePlacement(int shard, std::string_view value, int64_t revision) {
  Json json = ParseObject(value);
  auto string_field = [&json](const char* name) {
    return json.contains(name) && json[name].is_string();
  };
  auto string_list = [&json](const char* name) {
    if (!json.contains(name)) return true;
    if (!json[name].is_array()) return false;
    return std::all_of(json[name].begin(), json[name].end(),
                       [](const Json& item) { return item.is_string(); });
  };
  if (json.is_discarded() || !string_field("owner") || !json.contains("epoch") ||
      !json["epoch"].is_number_integer() || json["epoch"].get<int64_t>() < 0 ||
      (json.contains("movingTo") && !string_field("movingTo")) || !string_list("followers") ||
      !string_list("inSync")) {
    return Unreadable(ShardKey(shard), value);
  }
  ShardPlacement placement{.shard = shard,
                           .owner = json["owner"].get<std::string>(),
                           .epoch = json["epoch"].get<int64_t>(),
                           .moving_to = json.value("movingTo", std::string()),
                           .followers = json.value("followers", std::vector<std::string>()),
                           .in_sync = json.value("inSync", std::vector<std::string>()),
                           .revision = revision};
  return placement;
}

Result<Topology> ParseTopology(const KeyRange& range) {
  Topology topology;
  topology.revision = range.revision;
  std::map<int, ShardPlacement> placements;
  bool has_cluster = false;
  for (const KeyValue& kv : range.kvs) {
    std::string_view key = kv.key;
    if (key == kClusterKey) {
      Result<ClusterSpec> spec = DecodeClusterSpec(kv.value);
      if (!spec.ok()) return spec.status();
      topology.shards = spec->shards;
      topology.replicas = spec->replicas;
      has_cluster = true;
    } else if (key.starts_with(kNodesPrefix)) {
      Result<NodeInfo> node = DecodeNode(key.substr(kNodesPrefix.size()), kv.value);
      if (!node.ok()) return node.status();
      topology.nodes.push_back(std::move(*node));
    } else if (key.starts_with(kShardsPrefix)) {
      std::string_view number = key.substr(kShardsPrefix.size());
      int shard = -1;
      auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), shard);
      if (error != std::errc() || end != number.data() + number.size() || shard < 0) {
        return InvalidArgument(fmt::format("{} is not a shard's key", key));
      }
      Result<ShardPlacement> placement = DecodePlacement(shard, kv.value, kv.mod_revision);
      if (!placement.ok()) return placement.status();
      placements[shard] = std::move(*placement);
    }
  }
  if (!has_cluster) {
    return InvalidArgument(fmt::format(
        "there is no cluster in this etcd (no key {}); make one with: shardctl cluster init",
        kClusterKey));
  }
  for (int shard = 0; shard < topology.shards; ++shard) {
    auto it = placements.find(shard);
    // A missing key is a shard nobody claimed yet: the same as owner "".
    topology.shard.push_back(it != placements.end() ? it->second : ShardPlacement{.shard = shard});
  }
  std::sort(topology.nodes.begin(), topology.nodes.end(),
            [](const NodeInfo& a, const NodeInfo& b) { return a.id < b.id; });
  return topology;
}

std::vector<PlannedMove> PlanRebalance(const Topology& topology) {
  std::vector<PlannedMove> moves;
  if (topology.nodes.empty()) return moves;
  Loads loads(topology);
  // Balanced once no two live nodes differ by more than one shard: each then
  // holds floor(N/n) or ceil(N/n).
  for (;;) {
    auto by_load = [](const auto& a, const auto& b) { return a.second < b.second; };
    auto heaviest = std::max_element(loads.by_node.begin(), loads.by_node.end(), by_load);
    auto lightest = std::min_element(loads.by_node.begin(), loads.by_node.end(), by_load);
    if (heaviest->second - lightest->second <= 1) break;
    const ShardPlacement* pick = nullptr;
    for (const ShardPlacement& placement : topology.shard) {
      bool already = std::any_of(moves.begin(), moves.end(), [&](const PlannedMove& move) {
        return move.shard == placement.shard;
      });
      if (placement.owner == heaviest->first && placement.moving_to.empty() && !already &&
          !placement.IsFollower(lightest->first)) {
        pick = &placement;
        break;
      }
    }
    if (pick == nullptr) break;  // its shards are all moving already
    moves.push_back({pick->shard, heaviest->first, lightest->first});
    --heaviest->second;
    ++lightest->second;
  }
  return moves;
}

std::vector<std::string> PlanFollowers(const Topology& topology, const ShardPlacement& placement) {
  std::vector<std::string> followers = placement.followers;
  const size_t wanted = static_cast<size_t>(std::max(topology.replicas - 1, 0));
  if (placement.owner.empty()) return followers;
  // Copies of any shard each live node holds.
  std::map<std::string, int> copies;
  for (const NodeInfo& node : topology.nodes) copies[node.id] = 0;
  for (const ShardPlacement& other : topology.shard) {
    if (auto it = copies.find(other.owner); it != copies.end()) ++it->second;
    for (const std::string& follower : other.followers) {
      if (auto it = copies.find(follower); it != copies.end()) ++it->second;
    }
  }
  auto free_node = [&]() -> std::string {
    std::string best;
    for (const auto& [id, count] : copies) {
      if (id == placement.owner ||
          std::find(followers.begin(), followers.end(), id) != followers.end()) {
        continue;
      }
      if (best.empty() || count < copies[best]) best = id;
    }
    return best;
  };
  // Dead followers out of sync give way to live nodes.
  for (std::string& follower : followers) {
    if (topology.FindNode(follower) != nullptr || placement.IsInSync(follower)) continue;
    std::string spare = free_node();
    if (spare.empty()) break;
    follower = spare;
    ++copies[spare];
  }
  while (followers.size() < wanted) {
    std::string spare = free_node();
    if (spare.empty()) break;
    followers.push_back(spare);
    ++copies[spare];
  }
  return followers;
}

Result<std::vector<PlannedMove>> PlanDrain(const Topology& topology, std::string_view node) {
  if (topology.FindNode(node) == nullptr) {
    return InvalidArgument(fmt::format("node {} is not alive; only a live node can be drained "
                                       "(its shards' data is on it)",
                                       node));
  }
  if (topology.nodes.size() < 2) {
    return InvalidArgument(
        fmt::format("node {} is the only live node: there is nowhere to move its shards", node));
  }
  Loads loads(topology);
  std::vector<PlannedMove> moves;
  for (const ShardPlacement& placement : topology.shard) {
    if (placement.owner != node) continue;
    std::string to =
        placement.moving_to.empty() ? loads.Lightest(node, placement) : placement.moving_to;
    if (to.empty()) {
      return InvalidArgument(fmt::format(
          "shard {} has a copy on every other live node: there is nowhere to move it", placement.shard));
    }
    if (placement.moving_to.empty()) ++loads.by_node[to];
    moves.push_back({placement.shard, std::string(node), to});
  }
  return moves;
}

}  // namespace shardctl::core
