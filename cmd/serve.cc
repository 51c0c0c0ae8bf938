// shardctl serve: runs the shards and the aggregator, together in one process
// (--role all) or one piece per process (--role shard / --role aggregator).
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "cmd/daemon.h"
#include "cmd/help_format.h"
#include "cmd/log.h"
#include "cmd/serve_metrics.h"
#include "core/aggregator.h"
#include "core/cluster_counter.h"
#include "core/cluster_shard_client.h"
#include "core/combining_shard_client.h"
#include "core/hosted_shards.h"
#include "core/node_agent.h"
#include "core/shard.h"
#include "core/topology_store.h"
#include "core/topology_view.h"
#include "core/total_table.h"
#include "net/aggregator_server.h"
#include "net/http_server.h"
#include "net/http_shard_client.h"
#include "net/node_count_client.h"
#include "net/node_server.h"
#include "net/replica_client.h"
#include "net/shard_server.h"
#include "net/tls.h"
#include "net/url.h"
#include "store/file_journal.h"
#include "store/node_storage.h"
#include "store/reshard_storage.h"
#include "store/shard_store.h"
#include "topo/etcd_store.h"

namespace shardctl::cmd {
namespace {

constexpr int kMaxShards = 1024;

struct ServeOptions {
  std::string role = "all";
  int shards = 3;
  std::optional<int> port;  // default: 4000, or a shard's own port with --role shard
  int shard_base_port = 3000;
  std::string bind = "127.0.0.1";
  std::optional<int> shard_id;
  std::vector<std::string> shard_urls;
  std::optional<int> threads;  // default: DefaultThreads()
  double shard_timeout_seconds = 2;
  std::string data_dir;  // "": the default, store::DefaultDataDir()
  bool in_memory = false;
  std::string fsync = "everysec";
  std::string routing = "value";
  int64_t idempotency_window_seconds = core::kDefaultIdempotencyWindowSeconds;
  bool daemon = false;
  bool access_log = false;
  bool no_metrics = false;
  std::string pid_file;  // "": none, or DefaultPidFile() with --daemon
  std::string log_file;  // "": stderr
  std::string log_level = "info";
  std::string token_file;  // "": no token needed
  std::vector<std::string> cors_origins;
  // TLS on every listener ("": plain HTTP), and client certificates required
  // when tls_client_ca is set.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // What this process's own connections (to shards, nodes, etcd) trust and
  // present; cert and key default to tls_cert and tls_key.
  std::string cacert;  // "": $SHARDCTL_CACERT, else the system's CAs
  std::string cert;
  std::string key;
  std::string etcd;        // "": no cluster; else its etcd endpoints
  std::string node_id;     // "": the advertised host:port
  std::string advertise;   // "": http://BIND:PORT
  int lease_seconds = 2;
  std::string ack = "all";  // with replication: when an increment is acknowledged
  bool shards_given = false;
  bool routing_given = false;
  bool idempotency_window_given = false;
  bool lease_given = false;
  bool ack_given = false;
};

// One shard and, unless in memory, the store that keeps it. The store is
// declared first: it must outlive the shard, which journals into it.
struct ShardHolder {
  std::unique_ptr<store::ShardStore> store;
  std::unique_ptr<core::Shard> shard;
};

// Everything serve runs, in destruction order: servers stop before the
// aggregator and the shards they use go away, and shards before their stores.
// A cluster node's shards live in `hosted`, kept by `storage`.
struct Running {
  // With shards and aggregator in one process: every counter's total, which
  // the shards keep up to date (it outlives them).
  std::unique_ptr<core::TotalTable> totals;
  std::unique_ptr<core::CoordStore> store;
  std::unique_ptr<core::TopologyView> view;
  std::unique_ptr<core::ShardStorage> storage;
  std::unique_ptr<core::HostedShards> hosted;
  std::unique_ptr<net::HttpReplicaSource> replicas;  // a follower's way to its primaries
  std::unique_ptr<core::NodeAgent> agent;
  std::vector<ShardHolder> shards;
  std::unique_ptr<core::Aggregator> aggregator;
  std::vector<std::unique_ptr<net::HttpServer>> servers;  // aggregator's last

  void StopAll() {
    for (auto it = servers.rbegin(); it != servers.rend(); ++it) (*it)->Stop();
  }
};

// Calls a function every `interval` on a thread of its own, until destroyed.
class Periodic {
 public:
  Periodic(std::chrono::milliseconds interval, std::function<void()> tick)
      : thread_([this, interval, tick = std::move(tick)] {
          std::unique_lock lock(mutex_);
          while (!stop_.wait_for(lock, interval, [this] { return stopping_; })) {
            lock.unlock();
            tick();
            lock.lock();
          }
        }) {}
  ~Periodic() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    stop_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable stop_;
  bool stopping_ = false;
  std::thread thread_;
};

// Once a second, for one shard: syncs the journal for --fsync everysec, drops
// ended windows (paced, until `expiry_deadline`, which the tick's shards
// share: what is left waits for the next tick) and idempotency keys past
// their window (so memory stays bounded however many windowed counters and
// keys come and go), and compacts the store when its journal has grown.
void Tend(ShardHolder& holder, bool sync_every_second,
          std::chrono::steady_clock::time_point expiry_deadline) {
  core::Status status;
  if (holder.store && sync_every_second) status = holder.store->Sync();
  holder.shard->DropExpired(expiry_deadline);
  if (holder.store && status.ok() && holder.store->NeedsCompaction()) {
    status = holder.store->Compact(*holder.shard);
  }
  if (!status.ok()) Log(LogLevel::kError, "shard {}: {}", holder.shard->id(), status.message());
}

// Opens shard `id`: its store (reading back what it holds) unless in memory.
core::Result<ShardHolder> OpenShard(const ServeOptions& options, int id, int shard_count,
                                    store::FsyncPolicy fsync) {
  ShardHolder holder;
  if (options.in_memory) {
    holder.shard =
        std::make_unique<core::Shard>(id, nullptr, nullptr, options.idempotency_window_seconds);
    return holder;
  }
  core::Result<std::unique_ptr<store::ShardStore>> opened = store::ShardStore::Open(
      {.data_dir = options.data_dir.empty() ? store::DefaultDataDir() : options.data_dir,
       .shard_id = id,
       .shard_count = shard_count,
       .fsync = fsync});
  if (!opened.ok()) return opened.status();
  holder.store = std::move(*opened);
  holder.shard = std::make_unique<core::Shard>(id, nullptr, holder.store->journal(),
                                               options.idempotency_window_seconds);
  for (const core::Record& record : holder.store->recovered()) {
    if (core::Status replayed = holder.shard->Replay(record); !replayed.ok()) {
      return core::Internal(
          fmt::format("the store in {} is corrupt: {}", holder.store->dir(), replayed.message()));
    }
  }
  holder.store->ForgetRecovered();
  holder.shard->DropExpiredWindows();
  holder.shard->DropExpiredKeys();
  return holder;
}

// True for an aggregator whose event loops never wait on a node: one that
// follows a cluster (--etcd).
bool AggregatorNeverWaits(const ServeOptions& options) {
  return options.role == "aggregator" && !options.etcd.empty();
}

// Event-loop threads per listener when --threads is not given: one per CPU,
// as handlers answer from memory. An aggregator's handlers wait for its
// shards' answers over the network, so it needs many more. With --fsync
// always, durable increments per second are fsyncs per second times the
// increments each carries, and one loop gathers every request that arrived
// while the last fsync ran into its next one; two loops split the clients
// into two groups that take turns (measured: 33k/s with one loop, 23k/s
// with two).
int DefaultThreads(const ServeOptions& options) {
  if (AggregatorNeverWaits(options)) {
    return std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  }
  if (options.role == "aggregator") return 64;
  if (!options.in_memory && options.fsync == "always") return 1;
  return std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
}

// Checks the combination of options. Returns an empty string when it is fine.
std::string Validate(const ServeOptions& o) {
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return "--tls-cert and --tls-key go together: the certificate and its private key";
  }
  if (!o.tls_client_ca.empty() && o.tls_cert.empty()) {
    return "--tls-client-ca asks clients for certificates over TLS: add --tls-cert and --tls-key";
  }
  if (o.cert.empty() != o.key.empty()) {
    return "--cert and --key go together: the client certificate and its private key";
  }
  if (!o.etcd.empty()) {
    if (o.role == "shard") {
      return "--etcd joins a node, which hosts whatever shards the cluster gives it: leave out "
             "--role shard";
    }
    if (!o.shard_urls.empty()) {
      return "--shard is for an aggregator with a fixed shard list; with --etcd it follows the "
             "cluster's topology";
    }
    if (o.shards_given) return "with --etcd the shard count is the cluster's (shardctl cluster init)";
    if (o.shard_id) return "--shard-id is for --role shard";
    if (o.role == "aggregator" && o.idempotency_window_given) {
      return "--idempotency-window is for the nodes, which keep the keys";
    }
    if (!o.node_id.empty()) {
      if (core::Status valid = core::ValidateNodeId(o.node_id); !valid.ok()) {
        return "--node-id: " + valid.message();
      }
    }
    return {};
  }
  if (!o.node_id.empty() || !o.advertise.empty() || o.lease_given) {
    return "--node-id, --advertise and --lease are for a cluster node: add --etcd URL";
  }
  if (o.ack_given && (o.etcd.empty() || o.role == "aggregator")) {
    return "--ack is for a node of a replicated cluster: add --etcd URL";
  }
  if (o.role == "shard") {
    if (!o.shard_id) return "--role shard needs --shard-id K (0 <= K < --shards)";
    if (*o.shard_id >= o.shards) {
      return fmt::format("--shard-id {} is out of range: with --shards {} it must be 0..{}",
                         *o.shard_id, o.shards, o.shards - 1);
    }
    if (!o.shard_urls.empty()) return "--shard is for --role aggregator, not --role shard";
    if (o.routing_given) return "--routing is for the aggregator, not --role shard";
  } else if (o.role == "aggregator") {
    if (o.shard_urls.empty()) {
      return "--role aggregator needs its shards: --shard URL, repeated, in shard order";
    }
    if (o.shard_id) return "--shard-id is for --role shard";
    if (o.idempotency_window_given) {
      return "--idempotency-window is for the shards, which keep the keys (--role all or shard)";
    }
    if (o.shards_given && o.shards != static_cast<int>(o.shard_urls.size())) {
      return fmt::format("--shards {} but {} --shard URLs given; they must agree", o.shards,
                         o.shard_urls.size());
    }
  } else {
    if (o.shard_id) return "--shard-id is for --role shard";
    if (!o.shard_urls.empty()) return "--shard is for --role aggregator";
    if (o.shard_base_port != 0 && o.shard_base_port + o.shards - 1 > 65535) {
      return fmt::format("shard ports {}..{} go past 65535; lower --shard-base-port",
                         o.shard_base_port, o.shard_base_port + o.shards - 1);
    }
  }
  return {};
}

// Removes the pid file when serve ends, however it ends.
class PidFileGuard {
 public:
  explicit PidFileGuard(std::string path) : path_(std::move(path)) {}
  ~PidFileGuard() {
    if (!path_.empty()) RemovePidFile(path_);
  }
  PidFileGuard(const PidFileGuard&) = delete;
  PidFileGuard& operator=(const PidFileGuard&) = delete;

 private:
  std::string path_;
};

std::string Absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(path, error);
  return error ? path : absolute.string();
}

ExitCode Serve(ServeOptions options);

// Names the node (once its listener has its port), loads its data directory
// and registers it in the cluster under a lease, waiting for the lease of an
// earlier run of the same node to expire.
core::Status JoinCluster(const ServeOptions& options, Running& running,
                         std::atomic<core::NodeAgent*>& agent_ready) {
  const int port = running.servers.back()->port();
  std::string address = options.advertise;
  if (address.empty()) {
    if (options.bind == "0.0.0.0" || options.bind == "::") {
      return core::InvalidArgument(fmt::format(
          "--bind {} listens on every address: say which one other nodes reach this one at, "
          "with --advertise http://HOST:PORT",
          options.bind));
    }
    address = (options.tls_cert.empty() ? "http://" : "https://") +
              net::JoinHostPort(options.bind, port);
  }
  core::Result<net::Url> url = net::ParseUrl(address);
  if (!url.ok()) return core::InvalidArgument("--advertise: " + url.status().message());
  address = url->ToString();
  const std::string id = options.node_id.empty() ? url->HostPort() : options.node_id;
  if (core::Status valid = core::ValidateNodeId(id); !valid.ok()) {
    return core::InvalidArgument(fmt::format("node id {}: {}; set one with --node-id", id,
                                             valid.message()));
  }
  if (core::Status loaded = running.hosted->Load(id); !loaded.ok()) return loaded;
  running.agent = std::make_unique<core::NodeAgent>(
      *running.store, *running.hosted, *running.view,
      core::NodeAgentOptions{.node = {id, address},
                             .lease_ttl_seconds = options.lease_seconds,
                             .log = [](const std::string& line) {
                               Log(LogLevel::kInfo, "{}", line);
                             },
                             .replicas = running.replicas.get()});
  if (core::Status joined =
          running.agent->Join(std::chrono::seconds(options.lease_seconds + 2));
      !joined.ok()) {
    return core::Unavailable(fmt::format("cannot join the cluster: {}", joined.message()));
  }
  running.agent->OnTopology(*running.view->Get());
  agent_ready = running.agent.get();
  Log(LogLevel::kInfo, "joined the cluster as node {} ({})", id, address);
  return {};
}

// Sets what this process's own connections trust and present: --cacert,
// and --cert/--key, else the listeners' certificate.
core::Status SetOutboundTls(const ServeOptions& options) {
  net::TlsClientFiles files{.ca = options.cacert, .cert = options.cert, .key = options.key};
  if (files.cert.empty()) {
    files.cert = options.tls_cert;
    files.key = options.tls_key;
  }
  if (files.ca.empty() && files.cert.empty()) return {};  // the system's CAs, made when needed
  return net::SetTlsClientFiles(files);
}

// SIGHUP: reads the certificates again (a renewal). New connections use the
// new ones, open connections keep theirs; files that do not load leave the
// old ones in use.
void ReloadTls(const ServeOptions& options, Running& running) {
  core::Result<std::shared_ptr<const net::TlsContext>> loaded = net::TlsContext::ForServer(
      {.cert = options.tls_cert, .key = options.tls_key, .client_ca = options.tls_client_ca});
  if (!loaded.ok()) {
    Log(LogLevel::kError, "received SIGHUP; kept the TLS certificate in use: {}",
        loaded.status().message());
    return;
  }
  for (const auto& server : running.servers) server->SetTls(*loaded);
  if (core::Status set = SetOutboundTls(options); !set.ok()) {
    Log(LogLevel::kError, "received SIGHUP; kept the client certificate in use: {}", set.message());
  }
  Log(LogLevel::kInfo, "received SIGHUP, reloaded the TLS certificate {} ({})", options.tls_cert,
      (*loaded)->description());
}

ExitCode RunServe(const ServeOptions& options) {
  ExitCode code = Serve(options);
  ReportStarted(static_cast<int>(code));  // a daemon that never got ready says how it ended
  return code;
}

ExitCode Serve(ServeOptions options) {
  if (std::string problem = Validate(options); !problem.empty()) {
    return Fail(ExitCode::kUsage, problem);
  }
  core::Result<LogLevel> log_level = ParseLogLevel(options.log_level);
  if (!log_level.ok()) return Fail(ExitCode::kUsage, log_level.status().message());
  SetLogLevel(*log_level);

  // A daemon works from "/", so every path it uses is made absolute first.
  if (options.daemon && options.pid_file.empty()) options.pid_file = DefaultPidFile();
  options.pid_file = Absolute(options.pid_file);
  options.log_file = Absolute(options.log_file);
  if (!options.data_dir.empty()) options.data_dir = Absolute(options.data_dir);
  for (std::string* path : {&options.tls_cert, &options.tls_key, &options.tls_client_ca,
                            &options.cacert, &options.cert, &options.key}) {
    *path = Absolute(*path);
  }
  std::shared_ptr<const net::TlsContext> tls;
  if (!options.tls_cert.empty()) {
    core::Result<std::shared_ptr<const net::TlsContext>> loaded = net::TlsContext::ForServer(
        {.cert = options.tls_cert, .key = options.tls_key, .client_ca = options.tls_client_ca});
    if (!loaded.ok()) return Fail(ExitCode::kCannotServe, "TLS: " + loaded.status().message());
    tls = std::move(*loaded);
  }
  if (core::Status set = SetOutboundTls(options); !set.ok()) {
    return Fail(ExitCode::kCannotServe, "TLS: " + set.message());
  }
  if (!options.pid_file.empty()) {
    if (std::optional<pid_t> running = LiveShardctlPid(options.pid_file)) {
      return Fail(ExitCode::kCannotServe,
                  fmt::format("shardctl is already running as pid {} (pid file {}); stop it "
                              "with: shardctl stop --pid-file {}",
                              *running, options.pid_file, options.pid_file));
    }
  }
  if (!options.log_file.empty()) {
    // Opened once now, so that an unusable log file is refused at the start.
    int fd = ::open(options.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return Fail(ExitCode::kCannotServe, fmt::format("cannot open the log file {}: {}",
                                                      options.log_file, std::strerror(errno)));
    }
    ::close(fd);
  }
  if (options.daemon) Daemonize();
  if (!options.pid_file.empty()) {
    if (core::Status written = WritePidFile(options.pid_file); !written.ok()) {
      return Fail(ExitCode::kCannotServe, written.message());
    }
  }
  PidFileGuard pid_file_guard(options.pid_file);

  // Signals are taken by sigwait() below; block them before any thread starts
  // so that every server thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);  // a file size limit fails the write (EFBIG) instead
  // Every open connection holds a file descriptor (and no thread): allow as
  // many as the hard limit lets this process have.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  core::Result<store::FsyncPolicy> fsync = store::ParseFsyncPolicy(options.fsync);
  if (!fsync.ok()) return Fail(ExitCode::kUsage, fsync.status().message());
  core::Result<core::Routing> routing = core::ParseRouting(options.routing);
  if (!routing.ok()) return Fail(ExitCode::kUsage, routing.status().message());
  const std::string data_dir =
      options.data_dir.empty() ? store::DefaultDataDir() : options.data_dir;
  if (options.role == "all" && !options.in_memory && options.etcd.empty()) {
    if (core::Status fits = store::CheckNoExtraShards(data_dir, options.shards); !fits.ok()) {
      return Fail(ExitCode::kCannotServe, fits.message());
    }
  }
  if (options.role != "aggregator" && !options.in_memory) {
    if (core::Status whole = store::CheckNoReshardUnderWay(
            data_dir, options.etcd,
            TlsFileArguments({.cacert = options.cacert,
                              .cert = options.cert.empty() ? options.tls_cert : options.cert,
                              .key = options.cert.empty() ? options.tls_key : options.key}));
        !whole.ok()) {
      return Fail(ExitCode::kCannotServe, whole.message());
    }
  }

  net::HttpServerOptions server_options;
  // The dashboard's page (GET / on the aggregator) holds no data and asks
  // for the token itself. Elsewhere "/" has no route: 404 with or without it.
  server_options.open_paths.push_back("/");
  server_options.threads = options.threads.value_or(DefaultThreads(options));
  if (options.access_log) {
    server_options.access_log = [](const std::string& line) {
      Log(LogLevel::kInfo, "access {}", line);
    };
  }
  if (!options.token_file.empty()) {
    core::Result<std::string> token = ReadTokenFile(options.token_file);
    if (!token.ok()) return Fail(ExitCode::kCannotServe, token.status().message());
    server_options.bearer_token = *token;
  }
  server_options.cors_origins = options.cors_origins;
  server_options.tls = tls;
  // Before `running`: its servers count into it until they stop.
  core::Registry metrics;
  if (!options.no_metrics) server_options.metrics = &metrics;
  Running running;
  auto announce = [&](const std::string& name, const net::HttpServer& server) {
    fmt::print("{} listening on {}\n", name, net::JoinHostPort(options.bind, server.port()));
    std::fflush(stdout);
  };
  // Listens; says so at once unless `later` (a node says so once it joined).
  auto listen = [&](const std::string& name, int port,
                    const std::function<void(net::HttpServer&)>& routes, bool later = false) {
    net::HttpServerOptions listener_options = server_options;
    listener_options.listener = name;
    std::erase(listener_options.listener, ' ');  // "shard 0" -> "shard0"
    auto server = std::make_unique<net::HttpServer>(listener_options);
    routes(*server);
    if (!options.no_metrics) {
      server->Handle("GET", "/metrics", [&metrics](const net::HttpRequest&) {
        return net::HttpResponse{200, metrics.Render(), core::kMetricsContentType};
      });
    }
    core::Status status = server->Listen(options.bind, port);
    if (!status.ok()) return status;
    if (!later) announce(name, *server);
    running.servers.push_back(std::move(server));
    return core::Status();
  };
  auto add_shard = [&](int id, int port, core::Result<ShardHolder> holder) {
    if (!holder.ok()) return holder.status();
    running.shards.push_back(std::move(*holder));
    core::Shard& shard = *running.shards.back().shard;
    return listen(fmt::format("shard {}", id), port,
                  [&shard](net::HttpServer& server) { net::RegisterShardRoutes(shard, server); });
  };

  // A cluster: the topology comes from etcd, read once now (a node or an
  // aggregator that cannot read it has nothing to serve), then followed.
  const bool cluster_node = !options.etcd.empty() && options.role != "aggregator";
  if (!options.etcd.empty()) {
    core::Result<std::unique_ptr<topo::EtcdStore>> store = topo::OpenEtcdStore(
        options.etcd,
        std::chrono::milliseconds(static_cast<int64_t>(options.shard_timeout_seconds * 1000)));
    if (!store.ok()) return Fail(ExitCode::kUsage, "--etcd: " + store.status().message());
    running.store = std::move(*store);
    running.view = std::make_unique<core::TopologyView>(*running.store);
    if (core::Status read = running.view->Refresh(); !read.ok()) {
      return Fail(ExitCode::kCannotServe,
                  fmt::format("cannot read the cluster from etcd at {}: {}", options.etcd,
                              read.message()));
    }
    // Shards and shard clients are made for this count: a reshard while this
    // runs ends it (below), never routes by the old count.
    running.view->PinShardCount(running.view->Get()->shards);
  }
  std::atomic<core::NodeAgent*> agent_ready{nullptr};

  core::Status status;
  std::vector<std::unique_ptr<core::ShardClient>> clients;
  std::function<std::vector<core::Result<core::CountReply>>(const core::CounterRef&)>
      count_every_shard;
  if (cluster_node) {
    const int shard_count = running.view->Get()->shards;
    // Bound to one address, a node talks to the others and to etcd from it
    // too: cut off at that address, it is cut off entirely.
    if (options.bind != "0.0.0.0" && options.bind != "::") net::SetSourceAddress(options.bind);
    if (options.in_memory) {
      running.storage =
          std::make_unique<store::MemoryShardStorage>(options.idempotency_window_seconds);
    } else {
      running.storage = std::make_unique<store::NodeStorage>(
          store::NodeStorageOptions{.data_dir = data_dir,
                                    .shard_count = shard_count,
                                    .fsync = *fsync,
                                    .key_window_seconds = options.idempotency_window_seconds});
    }
    running.hosted = std::make_unique<core::HostedShards>(*running.storage, shard_count);
    auto timeout =
        std::chrono::milliseconds(static_cast<int64_t>(options.shard_timeout_seconds * 1000));
    const bool replicated = running.view->Get()->replicas > 1;
    if (replicated) {
      core::Result<core::AckPolicy> ack = core::ParseAckPolicy(options.ack);
      if (!ack.ok()) return Fail(ExitCode::kUsage, ack.status().message());
      running.hosted->EnableReplication({.ack = *ack});
      // A fetch waits up to half a second for a change; a snapshot may be large.
      running.replicas = std::make_unique<net::HttpReplicaSource>(net::HttpClientOptions{
          .connect_timeout = timeout,
          .request_timeout = std::max(timeout, std::chrono::milliseconds(300000)),
          .bearer_token = server_options.bearer_token,
          .max_answer_bytes = size_t{4} << 30});
      // Increments wait for the followers on these threads.
      server_options.blocking_threads = std::max(server_options.blocking_threads, 64);
    }
    net::NodeRoutesOptions routes{
        .shard_count = shard_count,
        .reconcile =
            [&agent_ready](int shard) {
              core::NodeAgent* agent = agent_ready.load();
              return agent ? agent->ReconcileShard(shard)
                           : core::Unavailable("the node is still joining the cluster");
            },
        // A copy may be large: it gets far longer than a request, and a
        // body as large as the shard's snapshot (some 50 bytes a counter).
        .peer = {.connect_timeout = timeout,
                 .request_timeout = std::max(timeout, std::chrono::milliseconds(300000)),
                 .bearer_token = server_options.bearer_token,
                 .max_answer_bytes = size_t{4} << 30},
        .replicated = replicated,
        .promote = [&agent_ready](int shard) -> core::Result<int64_t> {
          core::NodeAgent* agent = agent_ready.load();
          if (agent == nullptr) return core::Unavailable("the node is still joining the cluster");
          return agent->Promote(shard);
        }};
    core::HostedShards& hosted = *running.hosted;
    status = listen("node", options.port.value_or(options.shard_base_port),
                    [&](net::HttpServer& server) {
                      net::RegisterNodeRoutes(hosted, routes, server);
                    },
                    /*later=*/true);
    if (status.ok()) status = JoinCluster(options, running, agent_ready);
    if (status.ok()) announce("node", *running.servers.back());
  } else if (options.role == "shard") {
    status = add_shard(*options.shard_id,
                       options.port.value_or(options.shard_base_port == 0
                                                 ? 0
                                                 : options.shard_base_port + *options.shard_id),
                       OpenShard(options, *options.shard_id, options.shards, *fsync));
  } else if (options.role == "aggregator" && running.view) {
    auto timeout =
        std::chrono::milliseconds(static_cast<int64_t>(options.shard_timeout_seconds * 1000));
    net::HttpClientOptions client_options{.connect_timeout = timeout,
                                          .request_timeout = timeout,
                                          .bearer_token = server_options.bearer_token};
    auto connect = [client_options](int shard, const std::string& address,
                                    int64_t epoch) -> std::unique_ptr<core::ShardClient> {
      core::Result<net::Url> url = net::ParseUrl(address);
      if (!url.ok()) url = net::Url{};  // a node's bad address fails its calls, naming it
      return std::make_unique<net::HttpShardClient>(shard, *url, client_options, epoch);
    };
    std::vector<core::ShardClient*> single;
    for (int k = 0; k < running.view->Get()->shards; ++k) {
      clients.push_back(std::make_unique<core::CombiningShardClient>(
          std::make_unique<core::ClusterShardClient>(k, *running.view, connect)));
      single.push_back(clients.back().get());
    }
    // Totals ask each node once for all its shards.
    auto nodes = std::make_shared<net::NodeCountClient>(client_options);
    auto counter = std::make_shared<core::ClusterCounter>(
        *running.view,
        [nodes](const std::string& address, const std::vector<core::ShardAtEpoch>& shards,
                const core::CounterRef& counter) { return nodes->Count(address, shards, counter); },
        std::move(single));
    count_every_shard = [counter](const core::CounterRef& ref) {
      return counter->CountEveryShard(ref);
    };
  } else if (options.role == "aggregator") {
    auto timeout =
        std::chrono::milliseconds(static_cast<int64_t>(options.shard_timeout_seconds * 1000));
    for (size_t i = 0; i < options.shard_urls.size(); ++i) {
      core::Result<net::Url> url = net::ParseUrl(options.shard_urls[i]);
      if (!url.ok()) return Fail(ExitCode::kUsage, "--shard: " + url.status().message());
      // Concurrent increments bound for one shard travel together.
      clients.push_back(
          std::make_unique<core::CombiningShardClient>(std::make_unique<net::HttpShardClient>(
              static_cast<int>(i), *url,
              net::HttpClientOptions{.connect_timeout = timeout,
                                     .request_timeout = timeout,
                                     .bearer_token = server_options.bearer_token})));
    }
  } else {
    // Reading back a large store is CPU work for each shard, so the shards
    // are read in parallel; shard 0 first, alone, as it refuses a store made
    // for another shard count before any other shard's directory is made.
    // With the aggregator here too, its leaderboards come from the totals.
    if (options.role != "shard") running.totals = std::make_unique<core::TotalTable>();
    auto open = [&options, policy = *fsync](int id) {
      return OpenShard(options, id, options.shards, policy);
    };
    auto port_of = [&options](int id) {
      return options.shard_base_port == 0 ? 0 : options.shard_base_port + id;
    };
    core::Result<ShardHolder> first = open(0);
    std::vector<std::future<core::Result<ShardHolder>>> others;
    for (int id = 1; id < options.shards && first.ok(); ++id) {
      others.push_back(std::async(std::launch::async, open, id));
    }
    std::vector<core::Result<ShardHolder>> opened;
    opened.push_back(std::move(first));
    for (auto& other : others) opened.push_back(other.get());
    // The totals, and the leaderboard's index, are made from the shards by
    // the first leaderboard asked for.
    if (running.totals) {
      std::vector<core::Shard*> shards;
      for (auto& holder : opened) {
        if (holder.ok()) shards.push_back(holder->shard.get());
      }
      running.totals->FillOnFirstUse(std::move(shards));
    }
    for (int id = 0; id < options.shards && status.ok(); ++id) {
      status = add_shard(id, port_of(id), std::move(opened[static_cast<size_t>(id)]));
      if (status.ok())
        clients.push_back(std::make_unique<core::LocalShardClient>(*running.shards.back().shard));
    }
  }
  if (status.ok() && options.role != "shard" && !cluster_node) {
    core::AggregatorOptions aggregator_options;
    aggregator_options.routing = *routing;
    aggregator_options.count_every_shard = std::move(count_every_shard);
    aggregator_options.totals = running.totals.get();
    running.aggregator =
        std::make_unique<core::Aggregator>(std::move(clients), std::move(aggregator_options));
    core::Aggregator& aggregator = *running.aggregator;
    const net::AggregatorWaits waits =
        AggregatorNeverWaits(options) ? net::AggregatorWaits::kNever : net::AggregatorWaits::kInLoop;
    status = listen("aggregator", options.port.value_or(4000),
                    [&aggregator, waits](net::HttpServer& server) {
                      net::RegisterAggregatorRoutes(aggregator, server, waits);
                    });
  }
  if (!status.ok()) {
    running.StopAll();
    return Fail(ExitCode::kCannotServe, status.message());
  }
  if (!options.no_metrics) {
    ServeMetricsSources sources{.role = cluster_node ? "node" : options.role,
                                .shards = {},
                                .hosted = running.hosted.get(),
                                .aggregator = running.aggregator.get()};
    for (const ShardHolder& holder : running.shards) sources.shards.push_back(holder.shard.get());
    AddServeMetrics(metrics, sources);
  }

  const bool sync_every_second = *fsync == store::FsyncPolicy::kEverySecond;
  // The shards share one expiry budget per tick; each tick starts from the next.
  Periodic maintenance(
      std::chrono::seconds(1), [&running, sync_every_second, first = size_t{0}]() mutable {
        const auto expiry_deadline = std::chrono::steady_clock::now() + core::Shard::kExpiryBudget;
        const size_t shards = running.shards.size();
        for (size_t i = 0; i < shards; ++i) {
          Tend(running.shards[(first + i) % shards], sync_every_second, expiry_deadline);
        }
        if (shards > 0) first = (first + 1) % shards;
        if (running.hosted) running.hosted->TendAll(expiry_deadline);
      });
  // A cluster's processes follow its topology; a node also keeps its lease
  // and takes back shards sealed by moves that did not finish.
  std::atomic<bool> stop_following{false};
  std::atomic<bool> resharded{false};
  std::thread follower;
  std::optional<Periodic> lease_keeper;
  std::optional<Periodic> replication;
  if (running.view) {
    core::NodeAgent* agent = agent_ready.load();
    follower = std::thread([&running, &stop_following, &resharded, agent] {
      running.view->Follow(stop_following, [agent](const core::Topology& topology) {
        if (agent != nullptr) agent->OnTopology(topology);
      });
      if (std::string why = running.view->resharded(); !why.empty()) {
        // Requests are refused (503) from now on; exiting non-zero lets
        // systemd or Kubernetes start it again with the new count.
        Log(LogLevel::kError, "{}", why);
        resharded = true;
        ::kill(::getpid(), SIGTERM);
      }
    });
    if (agent != nullptr) {
      lease_keeper.emplace(std::chrono::milliseconds(options.lease_seconds * 1000 / 3),
                           [agent] { agent->Tick(); });
      if (running.replicas) {
        replication.emplace(std::chrono::milliseconds(100), [agent] { agent->TickReplication(); });
      }
    }
  }
  // Shards marked down are asked again five times a second, so that one that
  // comes back is used again at once.
  std::optional<Periodic> prober;
  if (running.aggregator) {
    prober.emplace(std::chrono::milliseconds(200),
                   [&aggregator = *running.aggregator] { aggregator.ProbeDownShards(); });
  }
  Log(LogLevel::kInfo, "shardctl {} ready (pid {}, {})", SHARDCTL_VERSION, ::getpid(),
      options.role == "aggregator" ? (options.etcd.empty() ? "aggregator" : "cluster aggregator")
      : options.in_memory          ? "in memory"
                                   : fmt::format("data in {}, fsync {}", data_dir, options.fsync));
  ReportStarted(0);
  // From now on everything printed goes to the log file (or, for a daemon
  // without one, nowhere): the terminal that started it may be gone.
  if (!options.log_file.empty()) {
    if (core::Status redirected = RedirectOutputTo(options.log_file); !redirected.ok()) {
      Log(LogLevel::kError, "{}", redirected.message());
    }
  } else if (options.daemon) {
    RedirectOutputTo("/dev/null");
  }

  for (;;) {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    if (signal_number != SIGHUP) {
      Log(LogLevel::kInfo, "received {}, stopping", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (tls) ReloadTls(options, running);
    if (options.log_file.empty()) {
      Log(LogLevel::kInfo, "received SIGHUP; no --log-file to reopen");
    } else if (core::Status reopened = RedirectOutputTo(options.log_file); reopened.ok()) {
      Log(LogLevel::kInfo, "received SIGHUP, reopened the log file {}", options.log_file);
    } else {
      Log(LogLevel::kError, "received SIGHUP: {}", reopened.message());
    }
  }
  // Increments waiting for followers answer now (their outcome unknown).
  if (running.hosted) running.hosted->FenceAll("the node is stopping");
  replication.reset();
  running.StopAll();
  if (follower.joinable()) {
    stop_following = true;
    follower.join();
  }
  lease_keeper.reset();
  if (running.agent) running.agent->Leave();  // shown as gone at once
  return resharded ? ExitCode::kServerFailed : ExitCode::kOk;
}

}  // namespace

void SetupServe(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* command = app.add_subcommand("serve", "Run the shards and the aggregator");
  OneOf(command->add_option("--role", options->role, "What this process runs"),
        {"all", "shard", "aggregator"})
      ->capture_default_str();
  command->add_option("--shards", options->shards, "Number of shards")
      ->type_name("N")
      ->check(StrictInteger())
      ->check(CLI::Range(1, kMaxShards))
      ->capture_default_str();
  command
      ->add_option("--port", options->port,
                   "Port of the aggregator (default: 4000), or of the shard with --role shard "
                   "(default: shard-base-port + shard-id); 0 picks a free port")
      ->type_name("PORT")
      ->check(StrictInteger())
      ->check(CLI::Range(0, 65535));
  command
      ->add_option("--shard-base-port", options->shard_base_port,
                   "Shard i listens on PORT + i; 0 picks free ports")
      ->type_name("PORT")
      ->check(StrictInteger())
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  command->add_option("--bind", options->bind, "Address to listen on")
      ->type_name("ADDRESS")
      ->capture_default_str();
  command->add_option("--shard-id", options->shard_id, "With --role shard: which shard this is")
      ->type_name("K")
      ->check(StrictInteger())
      ->check(CLI::Range(0, kMaxShards - 1));
  command
      ->add_option("--shard", options->shard_urls,
                   "With --role aggregator: a shard's URL, repeated in shard order")
      ->type_name("URL");
  command
      ->add_option("--threads", options->threads,
                   "Event-loop threads per listener: requests handled at once, idle "
                   "connections holding none (default: the CPU count, 1 with --fsync always, "
                   "64 with --role aggregator --shard)")
      ->type_name("N")
      ->check(StrictInteger())
      ->check(CLI::Range(1, 4096));
  command
      ->add_option("--shard-timeout", options->shard_timeout_seconds,
                   "With --role aggregator: seconds to wait for a shard")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command
      ->add_option("--data-dir", options->data_dir,
                   "Where shards keep their counts (default: $XDG_STATE_HOME/shardctl, "
                   "else ~/.local/state/shardctl)")
      ->type_name("DIR");
  command->add_flag("--in-memory", options->in_memory,
                    "Keep counts in memory only: a restart forgets them");
  OneOf(command->add_option("--fsync", options->fsync,
                            "When to fsync the journal: always (before each answer), everysec "
                            "(once a second), no (when the OS decides)"),
        {"always", "everysec", "no"})
      ->capture_default_str();
  OneOf(command->add_option("--routing", options->routing,
                            "How increments pick a shard: value (value mod N, the original's), "
                            "round-robin or random (both pass over shards that are down)"),
        {"value", "round-robin", "random"})
      ->capture_default_str();
  command
      ->add_option("--idempotency-window", options->idempotency_window_seconds,
                   "Seconds a shard remembers an increment's Idempotency-Key, and so answers a "
                   "retry with the first answer instead of counting it again")
      ->type_name("SECONDS")
      ->check(StrictInteger())
      ->check(CLI::Range(int64_t{1}, int64_t{30} * 24 * 60 * 60))
      ->capture_default_str();
  command->add_flag("--daemon", options->daemon,
                    "Detach and run in the background; returns once every listener is ready");
  command
      ->add_option("--pid-file", options->pid_file,
                   "Write the pid here, and refuse to start if it names a running shardctl "
                   "(default with --daemon: " +
                       DefaultPidFile() + ")")
      ->type_name("FILE");
  command
      ->add_option("--log-file", options->log_file,
                   "Once ready, append the log (and all output) here; SIGHUP reopens it")
      ->type_name("FILE");
  command->add_flag("--no-metrics", options->no_metrics,
                    "Count nothing for GET /metrics (which then answers 404)");
  command->add_flag("--access-log", options->access_log,
                    "Log one line per request: peer, method and path, status, bytes, time");
  OneOf(command->add_option("--log-level", options->log_level, "Lowest level logged"),
        {"debug", "info", "warning", "error"})
      ->capture_default_str();
  // --config is the app's (CLI11 reads config files at the top level only);
  // its [serve] section sets these options, and it may follow "serve".
  command->fallthrough();
  command
      ->add_option("--token-file", options->token_file,
                   "Require the bearer token in FILE on every request but GET /healthz and GET / "
                   "(and send it to the shards)")
      ->type_name("FILE");
  command
      ->add_option("--cors-origin", options->cors_origins,
                   "Let web pages from ORIGIN (scheme://host[:port]) call this server from a "
                   "browser; repeat for more origins")
      ->type_name("ORIGIN")
      ->check([](const std::string& origin) -> std::string {
        core::Status valid = net::CheckOrigin(origin);
        return valid.ok() ? "" : valid.message();
      });
  command
      ->add_option("--tls-cert", options->tls_cert,
                   "Serve HTTPS on every listener with the certificate (and chain) in FILE, PEM; "
                   "SIGHUP reads it again")
      ->type_name("FILE");
  command
      ->add_option("--tls-key", options->tls_key, "The private key of --tls-cert, PEM")
      ->type_name("FILE");
  command
      ->add_option("--tls-client-ca", options->tls_client_ca,
                   "Require client certificates signed by the CA in FILE (mutual TLS)")
      ->type_name("FILE");
  command
      ->add_option("--cacert", options->cacert,
                   "Trust the CA in FILE for this process's own https:// connections (shards, "
                   "nodes, etcd); default: the system's CAs")
      ->type_name("FILE")
      ->envname("SHARDCTL_CACERT");
  command
      ->add_option("--cert", options->cert,
                   "The client certificate this process presents to servers that ask (default: "
                   "--tls-cert)")
      ->type_name("FILE")
      ->envname("SHARDCTL_CERT");
  command->add_option("--key", options->key, "The private key of --cert")
      ->type_name("FILE")
      ->envname("SHARDCTL_KEY");
  command
      ->add_option("--etcd", options->etcd,
                   "Join the cluster kept in this etcd (comma-separated URLs) as a node, or with "
                   "--role aggregator follow its topology (see shardctl cluster)")
      ->type_name("URL")
      ->envname("SHARDCTL_ETCD");
  command
      ->add_option("--node-id", options->node_id,
                   "With --etcd: this node's name in the cluster, kept across restarts "
                   "(default: the advertised host:port)")
      ->type_name("ID");
  command
      ->add_option("--advertise", options->advertise,
                   "With --etcd: the URL other nodes and aggregators reach this node at "
                   "(default: http://BIND:PORT)")
      ->type_name("URL");
  command
      ->add_option("--lease", options->lease_seconds,
                   "With --etcd: seconds after which a node that stopped answering etcd is taken "
                   "for dead (with replication, its shards' followers then take over)")
      ->type_name("SECONDS")
      ->check(StrictInteger())
      ->check(CLI::Range(2, 600))
      ->capture_default_str();
  command
      ->add_option("--ack", options->ack,
                   "With --etcd in a replicated cluster: acknowledge an increment once every "
                   "in-sync follower has it (all), or once this node's journal has it (primary: "
                   "sooner, and a failover may lose the last ones)")
      ->type_name("all|primary")
      ->check(CLI::IsMember({"all", "primary"}))
      ->capture_default_str();
  command->footer(
      "Every option can also come from a TOML file, in its [serve] section, e.g.\n"
      "  [serve]\n  shards = 3\n  fsync = \"always\"\n"
      "read with --config FILE; options on the command line win over the file.\n"
      "Example: shardctl serve --shards 3 --port 4000\n"
      "         shardctl serve --config /etc/shardctl/shardctl.toml\n"
      "         shardctl serve --daemon --pid-file /tmp/shardctl.pid --log-file /tmp/shardctl.log\n"
      "         shardctl serve --role shard --shard-id 0 --port 3000\n"
      "         shardctl serve --role aggregator --shard http://10.0.0.1:3000 "
      "--shard http://10.0.0.2:3000");
  command->callback([options, command, &runner] {
    options->shards_given = command->count("--shards") > 0;
    options->routing_given = command->count("--routing") > 0;
    options->idempotency_window_given = command->count("--idempotency-window") > 0;
    options->lease_given = command->count("--lease") > 0;
    options->ack_given = command->count("--ack") > 0;
    runner = [options] { return RunServe(*options); };
  });
}

}  // namespace shardctl::cmd
