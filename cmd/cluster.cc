// shardctl cluster: makes a cluster in etcd and changes where its shards
// live: init, status, move, rebalance, drain, and (offline) its shard count:
// reshard. Talks to etcd for the topology and to the nodes for counts and
// the steps of each move; reshard reads and writes data directories.
#include <unistd.h>

#include <algorithm>
#include <map>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "core/protocol.h"
#include "core/reshard.h"
#include "core/shard_move.h"
#include "core/topology.h"
#include "core/topology_store.h"
#include "net/http_shard_client.h"
#include "net/move_client.h"
#include "net/url.h"
#include "store/reshard_storage.h"
#include "topo/etcd_store.h"

namespace shardctl::cmd {
namespace {

using Json = nlohmann::json;

struct ClusterOptions {
  std::string etcd = "http://127.0.0.1:2379";
  double timeout_seconds = 5;
  bool json = false;
  std::string token_file;
  TlsFileOptions tls;        // for https:// URLs of etcd and the nodes
  int shards = 3;            // init
  int replicas = 1;          // init
  int shard = -1;            // move
  std::string to;            // move
  std::string node;          // drain
  double copy_timeout_seconds = 300;  // move, rebalance, drain
  int new_shards = 0;                 // reshard
  std::vector<std::string> data_dirs;  // reshard
  std::string node_id;                 // reshard
};

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// Opens etcd, or prints why not and returns the exit code in *code. Every
// cluster command starts with it: it loads the TLS files first, for etcd and
// the nodes.
std::unique_ptr<topo::EtcdStore> OpenStore(const ClusterOptions& options, ExitCode* code) {
  if (ExitCode loaded = LoadTlsFiles(options.tls); loaded != ExitCode::kOk) {
    *code = loaded;
    return nullptr;
  }
  core::Result<std::unique_ptr<topo::EtcdStore>> store =
      topo::OpenEtcdStore(options.etcd, Millis(options.timeout_seconds));
  if (!store.ok()) {
    *code = Fail(ExitCode::kUsage, "--etcd: " + store.status().message());
    return nullptr;
  }
  return std::move(*store);
}

// The exit code for a failure to read or change the topology.
ExitCode StoreFailure(const ClusterOptions& options, const core::Status& status) {
  if (IsTlsFailure(status)) return FailUnreachable(status);
  switch (status.code()) {
    case core::Code::kUnavailable:
    case core::Code::kTimeout:
      return Fail(ExitCode::kUnreachable,
                  fmt::format("cannot reach etcd at {}: {} (nodes and aggregators keep serving "
                              "with the topology they last read; moves and joins wait)",
                              options.etcd, status.message()));
    case core::Code::kInvalidArgument: return Fail(ExitCode::kRefused, status.message());
    default: return Fail(ExitCode::kServerFailed, status.message());
  }
}

net::HttpClientOptions NodeClientOptions(const ClusterOptions& options, double timeout_seconds,
                                         ExitCode* code) {
  net::HttpClientOptions client{.connect_timeout = Millis(options.timeout_seconds),
                                .request_timeout = Millis(timeout_seconds),
                                .bearer_token = {}};
  ClientOptions as_client;
  as_client.token_file = options.token_file;
  core::Result<std::string> token = ClientToken(as_client);
  if (!token.ok()) {
    *code = Fail(ExitCode::kUsage, token.status().message());
  } else {
    client.bearer_token = *token;
  }
  return client;
}

// What status and promote start from: the topology, and how to reach the
// nodes.
struct ClusterRead {
  net::HttpClientOptions client;
  core::Topology topology;
};

// Reads the topology from etcd; std::nullopt after saying why, the exit
// code in *code.
std::optional<ClusterRead> ReadCluster(const ClusterOptions& options, ExitCode* code) {
  std::unique_ptr<topo::EtcdStore> store = OpenStore(options, code);
  if (!store) return std::nullopt;
  net::HttpClientOptions client = NodeClientOptions(options, options.timeout_seconds, code);
  if (*code != ExitCode::kOk) return std::nullopt;
  core::Result<core::Topology> topology = core::ReadTopology(*store);
  if (!topology.ok()) {
    *code = StoreFailure(options, topology.status());
    return std::nullopt;
  }
  return ClusterRead{std::move(client), std::move(*topology)};
}

ExitCode RunInit(const ClusterOptions& options) {
  ExitCode code = ExitCode::kOk;
  std::unique_ptr<topo::EtcdStore> store = OpenStore(options, &code);
  if (!store) return code;
  if (core::Status made = core::InitCluster(*store, options.shards, options.replicas);
      !made.ok()) {
    return StoreFailure(options, made);
  }
  fmt::print("made a cluster of {} shards{} in {}; join nodes with: shardctl serve --etcd {}\n",
             options.shards,
             options.replicas > 1 ? fmt::format(", {} copies of each", options.replicas) : "",
             options.etcd, options.etcd);
  return ExitCode::kOk;
}

// A node's GET /node, or null if it does not answer within a second: a
// paused or cut-off node must not hold up `cluster status` (asked once per
// node, not once per shard).
Json NodeReport(const core::NodeInfo& node, net::HttpClientOptions client) {
  core::Result<net::Url> url = net::ParseUrl(node.address);
  if (!url.ok()) return nullptr;
  client.connect_timeout = std::min(client.connect_timeout, std::chrono::milliseconds(1000));
  client.request_timeout = std::min(client.request_timeout, std::chrono::milliseconds(1000));
  net::HttpClient http(*url, client);
  core::Result<net::HttpReply> reply = http.Get("/node");
  if (!reply.ok() || reply->status != 200) return nullptr;
  Json json = Json::parse(reply->body, nullptr, false);
  return json.is_object() && json.contains("shards") ? json : Json(nullptr);
}

// From the primary's /node report: each follower's changes behind, by node id.
Json PrimaryLag(const Json& report, int shard_id) {
  Json lag = Json::object();
  if (!report.is_object()) return lag;
  for (const Json& shard : report["shards"]) {
    if (shard.value("shard", -1) != shard_id || !shard.contains("followers")) continue;
    for (const Json& follower : shard["followers"]) {
      lag[follower.value("node", "")] = follower.value("behind", int64_t{0});
    }
  }
  return lag;
}

ExitCode RunPromote(const ClusterOptions& options) {
  ExitCode code = ExitCode::kOk;
  std::optional<ClusterRead> read = ReadCluster(options, &code);
  if (!read) return code;
  const net::HttpClientOptions& client = read->client;
  const core::Topology* topology = &read->topology;
  if (options.shard >= topology->shards) {
    return Fail(ExitCode::kRefused, fmt::format("there is no shard {}: the cluster has shards 0..{}",
                                                options.shard, topology->shards - 1));
  }
  const core::ShardPlacement& placement = topology->shard[options.shard];
  std::string to = options.to;
  if (to.empty()) {
    for (const std::string& follower : placement.in_sync) {
      if (topology->FindNode(follower) != nullptr) {
        to = follower;
        break;
      }
    }
    if (to.empty()) {
      return Fail(ExitCode::kRefused,
                  fmt::format("shard {} has no live in-sync follower to promote", options.shard));
    }
  }
  const core::NodeInfo* node = topology->FindNode(to);
  if (node == nullptr) return Fail(ExitCode::kRefused, fmt::format("node {} is not alive", to));
  core::Result<net::Url> url = net::ParseUrl(node->address);
  if (!url.ok()) return Fail(ExitCode::kServerFailed, url.status().message());
  net::HttpClient http(*url, client);
  core::Result<net::HttpReply> reply =
      http.Post(fmt::format("/shards/{}/promote", options.shard), "");
  if (!reply.ok()) return FailUnreachable(reply.status());
  if (reply->status != 200) {
    return Fail(reply->status < 500 ? ExitCode::kRefused : ExitCode::kServerFailed,
                fmt::format("node {} refused: {}", to, core::ParseErrorMessage(reply->body)));
  }
  Json answer = Json::parse(reply->body, nullptr, false);
  const int64_t epoch = answer.is_object() ? answer.value("epoch", int64_t{0}) : 0;
  if (options.json) {
    fmt::print("{}\n", Json{{"shard", options.shard}, {"primary", to}, {"epoch", epoch}}.dump());
  } else {
    fmt::print("shard {}: node {} is its primary now, at epoch {}\n", options.shard, to, epoch);
  }
  return ExitCode::kOk;
}

ExitCode RunStatus(const ClusterOptions& options) {
  ExitCode code = ExitCode::kOk;
  std::optional<ClusterRead> read = ReadCluster(options, &code);
  if (!read) return code;
  const net::HttpClientOptions& client = read->client;
  const core::Topology* topology = &read->topology;

  Json nodes = Json::array();
  std::vector<int> load = topology->Load();
  for (size_t i = 0; i < topology->nodes.size(); ++i) {
    const core::NodeInfo& node = topology->nodes[i];
    Json held = Json::array();
    for (const core::ShardPlacement& placement : topology->shard) {
      if (placement.owner == node.id) held.push_back(placement.shard);
    }
    nodes.push_back({{"id", node.id}, {"address", node.address}, {"alive", true},
                     {"shards", held}});
  }
  // Owners that are not alive are listed too: their shards wait for them.
  for (const core::ShardPlacement& placement : topology->shard) {
    if (placement.owner.empty() || topology->FindNode(placement.owner) != nullptr) continue;
    bool listed = false;
    for (const Json& node : nodes) listed = listed || node["id"] == placement.owner;
    if (!listed) {
      Json held = Json::array();
      for (const core::ShardPlacement& other : topology->shard) {
        if (other.owner == placement.owner) held.push_back(other.shard);
      }
      nodes.push_back({{"id", placement.owner}, {"address", nullptr}, {"alive", false},
                       {"shards", held}});
    }
  }
  Json shards = Json::array();
  int homeless = 0;
  std::map<std::string, Json> reports;  // node id -> its /node (null: no answer)
  auto report_of = [&reports, &client](const core::NodeInfo& node) -> const Json& {
    auto report = reports.find(node.id);
    if (report == reports.end()) report = reports.emplace(node.id, NodeReport(node, client)).first;
    return report->second;
  };
  for (const core::ShardPlacement& placement : topology->shard) {
    const core::NodeInfo* owner = topology->FindNode(placement.owner);
    Json shard = {{"shard", placement.shard},
                  {"owner", placement.owner.empty() ? Json(nullptr) : Json(placement.owner)},
                  {"epoch", placement.epoch},
                  {"movingTo",
                   placement.moving_to.empty() ? Json(nullptr) : Json(placement.moving_to)},
                  {"followers", placement.followers},
                  {"inSync", placement.in_sync},
                  {"count", nullptr}};
    if (topology->replicas > 1) {
      // Every copy, its role, and how far behind the primary it is.
      Json copies = Json::array();
      Json lag = owner != nullptr ? PrimaryLag(report_of(*owner), placement.shard) : Json::object();
      copies.push_back({{"node", placement.owner}, {"role", "primary"}, {"inSync", true},
                        {"alive", owner != nullptr}, {"behind", 0}});
      for (const std::string& follower : placement.followers) {
        copies.push_back({{"node", follower},
                          {"role", "follower"},
                          {"inSync", placement.IsInSync(follower)},
                          {"alive", topology->FindNode(follower) != nullptr},
                          {"behind", lag.contains(follower) ? lag[follower] : Json(nullptr)}});
      }
      shard["copies"] = std::move(copies);
    }
    if (owner == nullptr) {
      ++homeless;
      shard["error"] = placement.owner.empty() ? "no node has claimed it"
                                               : "its node is not alive";
    } else if (report_of(*owner).is_null()) {
      // Paused or cut off: asked once, not once per shard with the full timeout.
      shard["error"] = fmt::format("its node {} does not answer at {}", owner->id, owner->address);
    } else if (core::Result<net::Url> url = net::ParseUrl(owner->address); url.ok()) {
      net::HttpShardClient node(placement.shard, *url, client, placement.epoch);
      core::Result<core::CountReply> count = node.Count(core::CounterRef());
      if (count.ok()) {
        shard["count"] = count->count;
      } else {
        shard["error"] = count.status().message();
      }
    }
    shards.push_back(std::move(shard));
  }
  Json status = {{"shards", topology->shards},
                 {"replicas", topology->replicas},
                 {"revision", topology->revision},
                 {"nodes", nodes},
                 {"shardPlacements", shards}};
  if (options.json) {
    fmt::print("{}\n", status.dump());
    return homeless > 0 ? ExitCode::kServerFailed : ExitCode::kOk;
  }
  fmt::print("cluster of {} shards, {} live node{} (etcd {}, revision {})\n\n", topology->shards,
             topology->nodes.size(), topology->nodes.size() == 1 ? "" : "s", options.etcd,
             topology->revision);
  fmt::print("{:<20}  {:<28}  {:<5}  {}\n", "NODE", "ADDRESS", "STATE", "SHARDS");
  for (const Json& node : nodes) {
    std::string held;
    for (const Json& shard : node["shards"]) held += (held.empty() ? "" : " ") + shard.dump();
    fmt::print("{:<20}  {:<28}  {:<5}  {}\n", node["id"].get<std::string>(),
               node["address"].is_null() ? "-" : node["address"].get<std::string>(),
               node["alive"].get<bool>() ? Colored("alive", 32) : Colored("dead ", 31),
               held.empty() ? "-" : held);
  }
  fmt::print("\n{:<5}  {:<20}  {:>6}  {:>20}  {}\n", "SHARD", "OWNER", "EPOCH", "COUNT", "STATE");
  const bool replicated = topology->replicas > 1;
  for (const Json& shard : shards) {
    std::string state = shard.contains("error") ? shard["error"].get<std::string>()
                        : shard["movingTo"].is_null()
                            ? "ok"
                            : "moving to " + shard["movingTo"].get<std::string>();
    fmt::print("{:<5}  {:<20}  {:>6}  {:>20}  {}\n", shard["shard"].get<int>(),
               shard["owner"].is_null() ? "-" : shard["owner"].get<std::string>(),
               shard["epoch"].get<int64_t>(),
               shard["count"].is_null() ? "-" : std::to_string(shard["count"].get<int64_t>()),
               state);
    if (!replicated) continue;
    for (const Json& copy : shard["copies"]) {
      if (copy["role"] == "primary") continue;
      std::string behind = copy["behind"].is_null() ? "?" : copy["behind"].dump();
      fmt::print("{:<5}  {:<20}  follower, {}{}, {} change{} behind\n", "",
                 copy["node"].get<std::string>(),
                 copy["inSync"].get<bool>() ? Colored("in sync", 32) : Colored("out of sync", 33),
                 copy["alive"].get<bool>() ? "" : " (" + Colored("dead", 31) + ")", behind,
                 behind == "1" ? "" : "s");
    }
  }
  if (homeless > 0) {
    fmt::print(stderr, "shardctl: {} shard{} without a live node\n", homeless,
               homeless == 1 ? "" : "s");
    return ExitCode::kServerFailed;
  }
  return ExitCode::kOk;
}

// Runs `moves` one after the other, reporting each; stops at the first failure.
ExitCode RunMoves(const ClusterOptions& options, core::CoordStore& store,
                  const std::vector<core::PlannedMove>& moves) {
  ExitCode code = ExitCode::kOk;
  net::HttpClientOptions client = NodeClientOptions(options, options.copy_timeout_seconds, &code);
  if (code != ExitCode::kOk) return code;
  net::HttpMoveSteps steps(client);
  const bool terminal = isatty(STDERR_FILENO) == 1;
  int done = 0;
  for (const core::PlannedMove& move : moves) {
    auto progress = [&](const std::string& line) {
      if (terminal) fmt::print(stderr, "[{}/{}] {}\n", done + 1, moves.size(), line);
    };
    core::Result<core::MoveReport> moved =
        core::MoveShard(store, steps, move.shard, move.to, progress);
    if (!moved.ok()) {
      if (moved.status().code() == core::Code::kUnavailable ||
          moved.status().code() == core::Code::kTimeout) {
        return Fail(ExitCode::kUnreachable, moved.status().message());
      }
      return Fail(moved.status().code() == core::Code::kInvalidArgument ? ExitCode::kRefused
                                                                          : ExitCode::kServerFailed,
                  moved.status().message());
    }
    ++done;
    if (options.json) {
      fmt::print("{}\n", Json{{"shard", moved->shard},
                              {"from", moved->from},
                              {"to", moved->to},
                              {"epoch", moved->epoch},
                              {"copySeconds", moved->copy.count() / 1e6},
                              {"pauseSeconds", moved->pause.count() / 1e6}}
                             .dump());
    } else {
      fmt::print("shard {}: moved from {} to {} at epoch {} (copy {:.1f} ms, writes paused "
                 "{:.1f} ms)\n",
                 moved->shard, moved->from, moved->to, moved->epoch, moved->copy.count() / 1e3,
                 moved->pause.count() / 1e3);
    }
    std::fflush(stdout);
  }
  if (!options.json && moves.empty()) fmt::print("nothing to move\n");
  return ExitCode::kOk;
}

ExitCode RunMove(const ClusterOptions& options) {
  ExitCode code = ExitCode::kOk;
  std::unique_ptr<topo::EtcdStore> store = OpenStore(options, &code);
  if (!store) return code;
  core::Result<core::Topology> topology = core::ReadTopology(*store);
  if (!topology.ok()) return StoreFailure(options, topology.status());
  std::string from = options.shard < topology->shards
                         ? topology->shard[options.shard].owner
                         : std::string();
  return RunMoves(options, *store, {{options.shard, from, options.to}});
}

ExitCode RunRebalance(const ClusterOptions& options) {
  ExitCode code = ExitCode::kOk;
  std::unique_ptr<topo::EtcdStore> store = OpenStore(options, &code);
  if (!store) return code;
  core::Result<core::Topology> topology = core::ReadTopology(*store);
  if (!topology.ok()) return StoreFailure(options, topology.status());
  return RunMoves(options, *store, core::PlanRebalance(*topology));
}

ExitCode RunDrain(const ClusterOptions& options) {
  ExitCode code = ExitCode::kOk;
  std::unique_ptr<topo::EtcdStore> store = OpenStore(options, &code);
  if (!store) return code;
  core::Result<core::Topology> topology = core::ReadTopology(*store);
  if (!topology.ok()) return StoreFailure(options, topology.status());
  core::Result<std::vector<core::PlannedMove>> moves = core::PlanDrain(*topology, options.node);
  if (!moves.ok()) return Fail(ExitCode::kRefused, moves.status().message());
  // Follower copies go too: each primary picks another node for them.
  for (const core::ShardPlacement& placement : topology->shard) {
    if (!placement.IsFollower(options.node)) continue;
    std::vector<std::string> followers = placement.followers;
    std::erase(followers, options.node);
    core::PlacementChange changed = core::SetFollowers(*store, placement, followers);
    if (!changed.ok()) return StoreFailure(options, changed.status());
  }
  ExitCode moved = RunMoves(options, *store, *moves);
  if (moved == ExitCode::kOk && !options.json) {
    fmt::print("node {} holds no shard now; it can be stopped\n", options.node);
  }
  return moved;
}

// The exit code for a failure of reshard's disk side.
ExitCode ReshardStorageFailure(const core::Status& status) {
  switch (status.code()) {
    case core::Code::kInvalidArgument:
    case core::Code::kOutOfRange: return Fail(ExitCode::kRefused, status.message());
    case core::Code::kUnavailable: return Fail(ExitCode::kCannotServe, status.message());
    default: return Fail(ExitCode::kServerFailed, status.message());
  }
}

// Commits the plan in etcd if nothing under the topology changed since
// `topology` was read. Returns kOk, or prints why not and returns the code.
ExitCode CommitReshard(const ClusterOptions& options, core::CoordStore& store,
                       const core::Topology& topology, const store::ReshardMarker& marker) {
  const std::vector<core::KeyWrite> writes = core::ReshardWrites(marker.plan);
  core::Result<bool> committed =
      store.CommitIfUnchanged(std::string(core::kTopologyPrefix), topology.revision, writes);
  if (!committed.ok()) {
    if (committed.status().message().find("too many operations") != std::string::npos) {
      store::AbandonReshard(marker);
      return Fail(ExitCode::kRefused,
                  fmt::format("etcd refused the reshard's transaction ({}): it writes {} keys "
                              "at once; start etcd with --max-txn-ops {} or more. Nothing was "
                              "changed",
                              committed.status().message(), writes.size(), writes.size()));
    }
    // The outcome may be unknown: the marker stays, and a rerun reads etcd.
    return Fail(ExitCode::kUnreachable,
                fmt::format("cannot commit the reshard in etcd at {}: {}; run the same command "
                            "again to finish it: {}",
                            options.etcd, committed.status().message(),
                            store::FinishReshardCommand(marker, options.etcd, TlsFileArguments(options.tls))));
  }
  if (!*committed) {
    store::AbandonReshard(marker);
    return Fail(ExitCode::kRefused,
                "the cluster changed in etcd while resharding (a node joined, or another "
                "command ran); nothing was changed: run it again once the cluster is stopped");
  }
  return ExitCode::kOk;
}

ExitCode RunReshard(ClusterOptions options) {
  if (core::Status valid = core::ValidateNodeId(options.node_id); !valid.ok()) {
    return Fail(ExitCode::kUsage, "--node-id: " + valid.message());
  }
  for (std::string& dir : options.data_dirs) {
    std::error_code error;
    std::filesystem::path absolute = std::filesystem::absolute(dir, error);
    if (!error) dir = absolute.lexically_normal().string();
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  }
  // A reshard that stopped half-way is finished by the same command.
  std::optional<store::ReshardMarker> marker;
  for (const std::string& dir : options.data_dirs) {
    core::Result<std::optional<store::ReshardMarker>> found = store::ReadReshardMarker(dir);
    if (!found.ok()) return Fail(ExitCode::kServerFailed, found.status().message());
    if (!found->has_value()) continue;
    if ((*found)->plan.to != options.new_shards || (*found)->plan.node != options.node_id ||
        (*found)->data_dirs[0] != options.data_dirs[0]) {
      return Fail(ExitCode::kRefused,
                  fmt::format("{} holds another reshard (from {} to {} shards) that did not "
                              "finish; finish it first with: {}",
                              dir, (*found)->plan.from, (*found)->plan.to,
                              store::FinishReshardCommand(**found, options.etcd, TlsFileArguments(options.tls))));
    }
    marker = std::move(**found);
    break;
  }

  ExitCode code = ExitCode::kOk;
  std::unique_ptr<topo::EtcdStore> store = OpenStore(options, &code);
  if (!store) return code;
  core::Result<core::Topology> topology = core::ReadTopology(*store);
  if (!topology.ok()) return StoreFailure(options, topology.status());

  std::optional<size_t> keys;  // known when this run read the old shards
  if (!marker || !core::ReshardCommitted(*topology, marker->plan)) {
    if (marker && topology->shards != marker->plan.from) {
      return Fail(ExitCode::kRefused,
                  fmt::format("{} records a reshard from {} to {} shards, but the cluster in "
                              "etcd has {}: it changed meanwhile; look at it before removing "
                              "{}/RESHARD",
                              options.data_dirs[0], marker->plan.from, marker->plan.to,
                              topology->shards, options.data_dirs[0]));
    }
    core::Result<core::ReshardPlan> plan =
        core::PlanReshard(*topology, options.new_shards, options.node_id);
    if (!plan.ok()) return Fail(ExitCode::kRefused, plan.status().message());
    std::vector<bool> required;
    for (const core::ShardPlacement& placement : topology->shard) {
      required.push_back(!placement.owner.empty());
    }
    core::Result<std::vector<std::vector<core::Record>>> old =
        store::ReadOldShards(options.data_dirs, plan->from, required);
    if (!old.ok()) return ReshardStorageFailure(old.status());
    core::Result<std::vector<std::vector<core::Record>>> resharded =
        core::ReshardRecords(*old, plan->to);
    if (!resharded.ok()) return ReshardStorageFailure(resharded.status());
    keys = std::count_if(resharded->front().begin(), resharded->front().end(),
                         [](const core::Record& record) {
                           return record.kind == core::Record::Kind::kAnyValueKey;
                         });
    // The marker first: from here on, serve refuses these data directories
    // and a rerun finishes what this one started.
    marker = store::ReshardMarker{*plan, options.data_dirs};
    if (core::Status written = store::WriteReshardMarker(*marker); !written.ok()) {
      return Fail(ExitCode::kServerFailed, written.message());
    }
    if (core::Status staged = store::StageNewShards(options.data_dirs[0], *resharded);
        !staged.ok()) {
      return Fail(ExitCode::kServerFailed,
                  fmt::format("{}; nothing in etcd was changed: run the same command again",
                              staged.message()));
    }
    if (ExitCode committed = CommitReshard(options, *store, *topology, *marker);
        committed != ExitCode::kOk) {
      return committed;
    }
  }
  core::Result<std::vector<std::string>> retired = store::SwapInNewShards(*marker);
  if (!retired.ok()) {
    return Fail(retired.status().code() == core::Code::kUnavailable ? ExitCode::kCannotServe
                                                                     : ExitCode::kServerFailed,
                fmt::format("the reshard is committed in etcd, but: {}; run the same command "
                            "again to finish it: {}",
                            retired.status().message(),
                            store::FinishReshardCommand(*marker, options.etcd, TlsFileArguments(options.tls))));
  }
  const core::ReshardPlan& plan = marker->plan;
  if (options.json) {
    fmt::print("{}\n", Json{{"from", plan.from},
                            {"to", plan.to},
                            {"node", plan.node},
                            {"epoch", plan.epoch},
                            {"dataDir", options.data_dirs[0]},
                            {"idempotencyKeys", keys ? Json(*keys) : Json(nullptr)},
                            {"retired", *retired}}
                           .dump());
  } else {
    fmt::print("resharded the cluster from {} to {} shards: every shard is node {}'s at epoch "
               "{}, in {}{}; the old shards are in retired/\n"
               "next: start node {} with --data-dir {}, then the other nodes, then run "
               "shardctl cluster rebalance\n",
               plan.from, plan.to, plan.node, plan.epoch, options.data_dirs[0],
               keys ? fmt::format(" ({} idempotency keys kept in every shard)", *keys) : "",
               plan.node, options.data_dirs[0]);
  }
  return ExitCode::kOk;
}

// --etcd, --timeout, --json, the TLS files and, for commands that talk to the
// nodes, --token-file.
void AddEtcdOptions(CLI::App& command, ClusterOptions& options, bool talks_to_nodes = true) {
  command.add_option("--etcd", options.etcd, "etcd's client URL (several: comma-separated)")
      ->type_name("URL")
      ->envname("SHARDCTL_ETCD")
      ->capture_default_str();
  command.add_option("--timeout", options.timeout_seconds,
                     "Seconds to wait for etcd and for each node's answer")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_flag("--json", options.json, "Print JSON instead of text");
  AddTlsFileOptions(command, options.tls);
  if (!talks_to_nodes) return;
  command.add_option("--token-file", options.token_file,
                     "A file holding the nodes' bearer token (default: $SHARDCTL_TOKEN)")
      ->type_name("FILE");
}

void AddCopyTimeout(CLI::App& command, ClusterOptions& options) {
  command.add_option("--copy-timeout", options.copy_timeout_seconds,
                     "Seconds a node may take to copy one shard")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

}  // namespace

void SetupCluster(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<ClusterOptions>();
  CLI::App* cluster = app.add_subcommand(
      "cluster", "Make a cluster in etcd and move its shards between nodes");
  cluster->require_subcommand(1);

  CLI::App* init = cluster->add_subcommand("init", "Make a cluster of N shards in etcd");
  AddEtcdOptions(*init, *options);
  init->add_option("--shards", options->shards,
                   "Number of shards: make more than you have nodes to be able to grow "
                   "online (changing it is offline: cluster reshard)")
      ->type_name("N")
      ->check(StrictInteger())
      ->check(CLI::Range(1, core::kMaxClusterShards))
      ->capture_default_str();
  init->callback([options, &runner] { runner = [options] { return RunInit(*options); }; });

  init->add_option("--replicas", options->replicas,
                   "Copies of each shard, on different nodes: a primary and R-1 followers that "
                   "take over when it dies")
      ->type_name("R")
      ->check(StrictInteger())
      ->check(CLI::Range(1, core::kMaxReplicas))
      ->capture_default_str();

  CLI::App* promote = cluster->add_subcommand(
      "promote", "Make an in-sync follower the primary of a shard (a failover by hand)");
  AddEtcdOptions(*promote, *options);
  promote->add_option("shard", options->shard, "The shard")
      ->required()
      ->check(StrictInteger())
      ->check(CLI::Range(0, core::kMaxClusterShards - 1));
  promote->add_option("--to", options->to, "The follower to promote (default: the first live "
                                           "in-sync one)")
      ->type_name("NODE");
  promote->footer("Exits 0 when promoted; 1 refused (not an in-sync follower, none alive); 3 "
                  "etcd or the node unreachable.");
  promote->callback([options, &runner] { runner = [options] { return RunPromote(*options); }; });

  CLI::App* status = cluster->add_subcommand(
      "status", "Show the nodes, the shards (owner, epoch, count) and moves under way");
  AddEtcdOptions(*status, *options);
  status->footer("Exits 0 when every shard has a live node, 4 when any has none.");
  status->callback([options, &runner] { runner = [options] { return RunStatus(*options); }; });

  CLI::App* move = cluster->add_subcommand("move", "Move one shard to another node, online");
  AddEtcdOptions(*move, *options);
  AddCopyTimeout(*move, *options);
  move->add_option("shard", options->shard, "The shard to move")
      ->required()
      ->check(StrictInteger())
      ->check(CLI::Range(0, core::kMaxClusterShards - 1));
  move->add_option("--to", options->to, "The node to move it to")->type_name("NODE")->required();
  move->callback([options, &runner] { runner = [options] { return RunMove(*options); }; });

  CLI::App* rebalance = cluster->add_subcommand(
      "rebalance", "Spread the shards evenly over the live nodes, one move at a time");
  AddEtcdOptions(*rebalance, *options);
  AddCopyTimeout(*rebalance, *options);
  rebalance->callback(
      [options, &runner] { runner = [options] { return RunRebalance(*options); }; });

  CLI::App* drain = cluster->add_subcommand(
      "drain", "Move every shard off a node, so that it can be stopped");
  AddEtcdOptions(*drain, *options);
  AddCopyTimeout(*drain, *options);
  drain->add_option("node", options->node, "The node to empty")->required();
  drain->callback([options, &runner] { runner = [options] { return RunDrain(*options); }; });

  CLI::App* reshard = cluster->add_subcommand(
      "reshard", "Change a stopped cluster's shard count, keeping every count and key");
  AddEtcdOptions(*reshard, *options, /*talks_to_nodes=*/false);
  reshard
      ->add_option("--shards", options->new_shards,
                   "The new number of shards; every counter keeps its total")
      ->type_name("N")
      ->required()
      ->check(StrictInteger())
      ->check(CLI::Range(1, core::kMaxClusterShards));
  reshard
      ->add_option("--data-dir", options->data_dirs,
                   "A data directory holding old shards (repeat for several); the new shards "
                   "go to the first")
      ->type_name("DIR")
      ->required();
  reshard
      ->add_option("--node-id", options->node_id,
                   "The node that owns every new shard: the one started on the first --data-dir")
      ->type_name("ID")
      ->required();
  reshard->footer(
      "Offline: every node must be stopped. Drain the shards to one node first (shardctl\n"
      "cluster drain), stop every node, run this with that node's data directory and id,\n"
      "start it, start the others, then run shardctl cluster rebalance. Running the same\n"
      "command again finishes a reshard that stopped half-way.\n"
      "Exits 0 when done; 1 refused (a node alive, a move under way, the same count, a\n"
      "shard missing); 2 bad usage; 3 etcd unreachable; 4 a failure reading or writing the\n"
      "data; 5 a shard directory in use by a running shardctl.\n"
      "Example: shardctl cluster reshard --shards 12 --data-dir /var/lib/shardctl "
      "--node-id n1");
  reshard->callback([options, &runner] { runner = [options] { return RunReshard(*options); }; });
}

}  // namespace shardctl::cmd
