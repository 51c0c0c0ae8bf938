// shardctl serve: runs the shards and the aggregator, together in one process
// (--role all) or one piece per process (--role shard / --role aggregator).
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "core/aggregator.h"
#include "core/shard.h"
#include "net/aggregator_server.h"
#include "net/http_server.h"
#include "net/http_shard_client.h"
#include "net/shard_server.h"
#include "net/url.h"
#include "store/file_journal.h"
#include "store/shard_store.h"

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
  int threads = 64;
  double shard_timeout_seconds = 2;
  std::string data_dir;  // "": the default, store::DefaultDataDir()
  bool in_memory = false;
  std::string fsync = "everysec";
  std::string token_file;  // "": no token needed
  bool shards_given = false;
};

// One shard and, unless in memory, the store that keeps it. The store is
// declared first: it must outlive the shard, which journals into it.
struct ShardHolder {
  std::unique_ptr<store::ShardStore> store;
  std::unique_ptr<core::Shard> shard;
};

// Everything serve runs, in destruction order: servers stop before the
// aggregator and the shards they use go away, and shards before their stores.
struct Running {
  std::vector<ShardHolder> shards;
  std::unique_ptr<core::Aggregator> aggregator;
  std::vector<std::unique_ptr<net::HttpServer>> servers;  // aggregator's last

  void StopAll() {
    for (auto it = servers.rbegin(); it != servers.rend(); ++it) (*it)->Stop();
  }
};

// Once a second, for every shard: drops ended windows (so memory stays
// bounded however many windowed counters come and go), syncs the journal for
// --fsync everysec, and compacts the store when its journal has grown.
class Maintenance {
 public:
  Maintenance(std::vector<ShardHolder>& shards, bool sync_every_second)
      : thread_([this, &shards, sync_every_second] {
          std::unique_lock lock(mutex_);
          while (!stop_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) {
            for (ShardHolder& holder : shards) Tend(holder, sync_every_second);
          }
        }) {}
  ~Maintenance() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    stop_.notify_one();
    thread_.join();
  }

 private:
  static void Tend(ShardHolder& holder, bool sync_every_second) {
    holder.shard->DropExpiredWindows();
    if (!holder.store) return;
    core::Status status;
    if (sync_every_second) status = holder.store->Sync();
    if (status.ok() && holder.store->NeedsCompaction())
      status = holder.store->Compact(*holder.shard);
    if (!status.ok()) {
      fmt::print(stderr, "shardctl: shard {}: {}\n", holder.shard->id(), status.message());
    }
  }

  std::mutex mutex_;
  std::condition_variable stop_;
  bool stopping_ = false;
  std::thread thread_;
};

// Opens shard `id`: its store (reading back what it holds) unless in memory.
core::Result<ShardHolder> OpenShard(const ServeOptions& options, int id, int shard_count,
                                    store::FsyncPolicy fsync) {
  ShardHolder holder;
  if (options.in_memory) {
    holder.shard = std::make_unique<core::Shard>(id);
    return holder;
  }
  core::Result<std::unique_ptr<store::ShardStore>> opened = store::ShardStore::Open(
      {.data_dir = options.data_dir.empty() ? store::DefaultDataDir() : options.data_dir,
       .shard_id = id,
       .shard_count = shard_count,
       .fsync = fsync});
  if (!opened.ok()) return opened.status();
  holder.store = std::move(*opened);
  holder.shard = std::make_unique<core::Shard>(id, nullptr, holder.store->journal());
  for (const core::Record& record : holder.store->recovered()) {
    if (core::Status replayed = holder.shard->Replay(record); !replayed.ok()) {
      return core::Internal(
          fmt::format("the store in {} is corrupt: {}", holder.store->dir(), replayed.message()));
    }
  }
  holder.store->ForgetRecovered();
  holder.shard->DropExpiredWindows();
  return holder;
}

// Checks the combination of options. Returns an empty string when it is fine.
std::string Validate(const ServeOptions& o) {
  if (o.role == "shard") {
    if (!o.shard_id) return "--role shard needs --shard-id K (0 <= K < --shards)";
    if (*o.shard_id >= o.shards) {
      return fmt::format("--shard-id {} is out of range: with --shards {} it must be 0..{}",
                         *o.shard_id, o.shards, o.shards - 1);
    }
    if (!o.shard_urls.empty()) return "--shard is for --role aggregator, not --role shard";
  } else if (o.role == "aggregator") {
    if (o.shard_urls.empty()) {
      return "--role aggregator needs its shards: --shard URL, repeated, in shard order";
    }
    if (o.shard_id) return "--shard-id is for --role shard";
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

ExitCode RunServe(const ServeOptions& options) {
  if (std::string problem = Validate(options); !problem.empty()) {
    return Fail(ExitCode::kUsage, problem);
  }

  // Signals are taken by sigwait() below; block them before any thread starts
  // so that every server thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
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
  const std::string data_dir =
      options.data_dir.empty() ? store::DefaultDataDir() : options.data_dir;
  if (options.role == "all" && !options.in_memory) {
    if (core::Status fits = store::CheckNoExtraShards(data_dir, options.shards); !fits.ok()) {
      return Fail(ExitCode::kCannotServe, fits.message());
    }
  }

  net::HttpServerOptions server_options;
  server_options.threads = options.threads;
  if (!options.token_file.empty()) {
    core::Result<std::string> token = ReadTokenFile(options.token_file);
    if (!token.ok()) return Fail(ExitCode::kCannotServe, token.status().message());
    server_options.bearer_token = *token;
  }
  Running running;
  auto listen = [&](const std::string& name, int port,
                    const std::function<void(net::HttpServer&)>& routes) {
    auto server = std::make_unique<net::HttpServer>(server_options);
    routes(*server);
    core::Status status = server->Listen(options.bind, port);
    if (!status.ok()) return status;
    fmt::print("{} listening on {}\n", name, net::JoinHostPort(options.bind, server->port()));
    std::fflush(stdout);
    running.servers.push_back(std::move(server));
    return core::Status();
  };
  auto add_shard = [&](int id, int port) {
    core::Result<ShardHolder> holder = OpenShard(options, id, options.shards, *fsync);
    if (!holder.ok()) return holder.status();
    running.shards.push_back(std::move(*holder));
    core::Shard& shard = *running.shards.back().shard;
    return listen(fmt::format("shard {}", id), port,
                  [&shard](net::HttpServer& server) { net::RegisterShardRoutes(shard, server); });
  };

  core::Status status;
  std::vector<std::unique_ptr<core::ShardClient>> clients;
  if (options.role == "shard") {
    status = add_shard(*options.shard_id,
                       options.port.value_or(options.shard_base_port == 0
                                                 ? 0
                                                 : options.shard_base_port + *options.shard_id));
  } else if (options.role == "aggregator") {
    auto timeout =
        std::chrono::milliseconds(static_cast<int64_t>(options.shard_timeout_seconds * 1000));
    for (size_t i = 0; i < options.shard_urls.size(); ++i) {
      core::Result<net::Url> url = net::ParseUrl(options.shard_urls[i]);
      if (!url.ok()) return Fail(ExitCode::kUsage, "--shard: " + url.status().message());
      clients.push_back(std::make_unique<net::HttpShardClient>(
          static_cast<int>(i), *url,
          net::HttpClientOptions{.connect_timeout = timeout,
                                 .request_timeout = timeout,
                                 .bearer_token = server_options.bearer_token}));
    }
  } else {
    for (int id = 0; id < options.shards && status.ok(); ++id) {
      status = add_shard(id, options.shard_base_port == 0 ? 0 : options.shard_base_port + id);
      if (status.ok())
        clients.push_back(std::make_unique<core::LocalShardClient>(*running.shards.back().shard));
    }
  }
  if (status.ok() && options.role != "shard") {
    running.aggregator = std::make_unique<core::Aggregator>(std::move(clients));
    core::Aggregator& aggregator = *running.aggregator;
    status =
        listen("aggregator", options.port.value_or(4000), [&aggregator](net::HttpServer& server) {
          net::RegisterAggregatorRoutes(aggregator, server);
        });
  }
  if (!status.ok()) {
    running.StopAll();
    return Fail(ExitCode::kCannotServe, status.message());
  }

  Maintenance maintenance(running.shards, *fsync == store::FsyncPolicy::kEverySecond);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  fmt::print(stderr, "shardctl: received {}, stopping\n",
             signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  running.StopAll();
  return ExitCode::kOk;
}

}  // namespace

void SetupServe(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* command = app.add_subcommand("serve", "Run the shards and the aggregator");
  command->add_option("--role", options->role, "What this process runs")
      ->check(CLI::IsMember({"all", "shard", "aggregator"}))
      ->capture_default_str();
  command->add_option("--shards", options->shards, "Number of shards")
      ->check(StrictInteger())
      ->check(CLI::Range(1, kMaxShards))
      ->capture_default_str();
  command
      ->add_option("--port", options->port,
                   "Port of the aggregator (default 4000), or of the shard with --role shard "
                   "(default shard-base-port + shard-id); 0 picks a free port")
      ->check(CLI::Range(0, 65535));
  command
      ->add_option("--shard-base-port", options->shard_base_port,
                   "Shard i listens on this port + i; 0 picks free ports")
      ->check(StrictInteger())
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  command->add_option("--bind", options->bind, "Address to listen on")->capture_default_str();
  command->add_option("--shard-id", options->shard_id, "With --role shard: which shard this is")
      ->check(StrictInteger())
      ->check(CLI::Range(0, kMaxShards - 1));
  command->add_option("--shard", options->shard_urls,
                      "With --role aggregator: a shard's URL, repeated in shard order");
  command
      ->add_option("--threads", options->threads,
                   "Worker threads per listener: requests handled at once (idle connections "
                   "hold none)")
      ->check(StrictInteger())
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  command
      ->add_option("--shard-timeout", options->shard_timeout_seconds,
                   "With --role aggregator: seconds to wait for a shard")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--data-dir", options->data_dir,
                      "Where shards keep their counts (default $XDG_STATE_HOME/shardctl, "
                      "else ~/.local/state/shardctl)");
  command->add_flag("--in-memory", options->in_memory,
                    "Keep counts in memory only: a restart forgets them");
  command
      ->add_option("--fsync", options->fsync,
                   "When to fsync the journal: always (before each answer), everysec "
                   "(once a second), no (when the OS decides)")
      ->check(CLI::IsMember({"always", "everysec", "no"}))
      ->capture_default_str();
  command->add_option("--token-file", options->token_file,
                      "Require the bearer token in FILE on every request but GET /healthz "
                      "(and send it to the shards)");
  command->footer(
      "Example: shardctl serve --shards 3 --port 4000\n"
      "         shardctl serve --role shard --shard-id 0 --port 3000\n"
      "         shardctl serve --role aggregator --shard http://10.0.0.1:3000 "
      "--shard http://10.0.0.2:3000");
  command->callback([options, command, &runner] {
    options->shards_given = command->count("--shards") > 0;
    runner = [options] { return RunServe(*options); };
  });
}

}  // namespace shardctl::cmd
