// shardctl cluster: makes a cluster in etcd and changes where its shards
// live: init, status, move, rebalance, drain. Talks to etcd for the topology
// and to the nodes for counts and the steps of each move.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "core/shard_move.h"
#include "core/topology.h"
#include "core/topology_store.h"
#include "net/http_shard_client.h"
#include "net/move_client.h"
#include "net/url.h"
#include "topo/etcd_store.h"

namespace shardctl::cmd {
namespace {

using Json = nlohmann::json;

struct ClusterOptions {
  std::string etcd = "http://127.0.0.1:2379";
  double timeout_seconds = 5;
  bool json = false;
  std::string token_file;
  int shards = 3;            // init
  int shard = -1;            // move
  std::string to;            // move
  std::string node;          // drain
  double copy_timeout_seconds = 300;  // move, rebalance, drain
};

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// Opens etcd, or prints why not and returns the exit code in *code.
std::unique_ptr<topo::EtcdStore> OpenStore(const ClusterOptions& options, ExitCode* code) {
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

ExitCode RunInit(const ClusterOptions& options) {
  ExitCode code = ExitCode::kOk;
  std::unique_ptr<topo::EtcdStore> store = OpenStore(options, &code);
  if (!store) return code;
  if (core::Status made = core::InitCluster(*store, options.shards); !made.ok()) {
    return StoreFailure(options, made);
  }
  fmt::print("made a cluster of {} shards in {}; join nodes with: shardctl serve --etcd {}\n",
             options.shards, options.etcd, options.etcd);
  return ExitCode::kOk;
}

ExitCode RunStatus(const ClusterOptions& options) {
  ExitCode code = ExitCode::kOk;
  std::unique_ptr<topo::EtcdStore> store = OpenStore(options, &code);
  if (!store) return code;
  net::HttpClientOptions client = NodeClientOptions(options, options.timeout_seconds, &code);
  if (code != ExitCode::kOk) return code;
  core::Result<core::Topology> topology = core::ReadTopology(*store);
  if (!topology.ok()) return StoreFailure(options, topology.status());

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
  for (const core::ShardPlacement& placement : topology->shard) {
    const core::NodeInfo* owner = topology->FindNode(placement.owner);
    Json shard = {{"shard", placement.shard},
                  {"owner", placement.owner.empty() ? Json(nullptr) : Json(placement.owner)},
                  {"epoch", placement.epoch},
                  {"movingTo",
                   placement.moving_to.empty() ? Json(nullptr) : Json(placement.moving_to)},
                  {"count", nullptr}};
    if (owner == nullptr) {
      ++homeless;
      shard["error"] = placement.owner.empty() ? "no node has claimed it"
                                               : "its node is not alive";
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
  ExitCode moved = RunMoves(options, *store, *moves);
  if (moved == ExitCode::kOk && !options.json) {
    fmt::print("node {} holds no shard now; it can be stopped\n", options.node);
  }
  return moved;
}

void AddEtcdOptions(CLI::App& command, ClusterOptions& options) {
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
                   "Number of shards, fixed for the cluster's life: make more than you have "
                   "nodes to be able to grow")
      ->type_name("N")
      ->check(StrictInteger())
      ->check(CLI::Range(1, core::kMaxClusterShards))
      ->capture_default_str();
  init->callback([options, &runner] { runner = [options] { return RunInit(*options); }; });

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
}

}  // namespace shardctl::cmd
