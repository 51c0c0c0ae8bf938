#include "cmd/serve_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "store/file_journal.h"

namespace shardctl::cmd {
namespace {

using Type = core::Registry::Type;

// The standard process metrics, from /proc (as Prometheus's own client
// libraries give them).
void CollectProcess(core::MetricSink& sink) {
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces: count fields after its ')'.
  if (size_t close = stat.rfind(')'); close != std::string::npos) {
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> field;  // field[0] is the stat file's field 3
    for (std::string word; fields >> word;) field.push_back(word);
    if (field.size() > 19) {
      double cpu = (std::stod(field[11]) + std::stod(field[12])) / ticks;  // utime + stime
      sink.Sample("process_cpu_seconds_total", {}, cpu);
      std::ifstream proc_stat("/proc/stat");
      for (std::string line; std::getline(proc_stat, line);) {
        if (line.starts_with("btime ")) {
          double boot = std::stod(line.substr(6));
          sink.Sample("process_start_time_seconds", {}, boot + std::stod(field[19]) / ticks);
        }
      }
    }
  }
  std::ifstream statm("/proc/self/statm");
  double size_pages = 0;  // the first field, before the resident pages
  double resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    sink.Sample("process_resident_memory_bytes", {}, resident_pages * page);
  }
  if (DIR* fds = ::opendir("/proc/self/fd")) {
    double open = 0;
    while (const dirent* entry = ::readdir(fds)) {
      if (entry->d_name[0] != '.') ++open;
    }
    ::closedir(fds);
    sink.Sample("process_open_fds", {}, open - 1);  // not the one reading the directory
  }
}

void CollectShard(core::MetricSink& sink, int shard, size_t counters, size_t keys,
                  uint64_t applied, uint64_t key_replays) {
  const core::Labels labels = {{"shard", std::to_string(shard)}};
  sink.Sample("shardctl_increments_total", labels, static_cast<double>(applied));
  sink.Sample("shardctl_counters", labels, static_cast<double>(counters));
  sink.Sample("shardctl_idempotency_keys", labels, static_cast<double>(keys));
  sink.Sample("shardctl_idempotency_replays_total", labels, static_cast<double>(key_replays));
}

}  // namespace

void AddServeMetrics(core::Registry& registry, const ServeMetricsSources& sources) {
  registry.Declare("shardctl_build_info", Type::kGauge,
                   "Always 1: the version of shardctl and the role this process serves.");
  registry.AddCollector([role = sources.role](core::MetricSink& sink) {
    sink.Sample("shardctl_build_info", {{"version", SHARDCTL_VERSION}, {"role", role}}, 1);
  });
  registry.Declare("process_cpu_seconds_total", Type::kCounter,
                   "User and system CPU time spent, in seconds.");
  registry.Declare("process_resident_memory_bytes", Type::kGauge, "Resident memory, in bytes.");
  registry.Declare("process_open_fds", Type::kGauge, "Open file descriptors.");
  registry.Declare("process_start_time_seconds", Type::kGauge,
                   "When the process started, in seconds since the Unix epoch.");
  registry.AddCollector(CollectProcess);

  if (!sources.shards.empty() || sources.hosted != nullptr) {
    registry.Declare("shardctl_increments_total", Type::kCounter,
                     "Increments applied, by shard (a batch's share counts once; a node's count "
                     "starts again when the shard comes back to it).");
    registry.Declare("shardctl_counters", Type::kGauge,
                     "Counters held (plain counters and windows), by shard.");
    registry.Declare("shardctl_idempotency_keys", Type::kGauge,
                     "Idempotency keys remembered, by shard.");
    registry.Declare("shardctl_idempotency_replays_total", Type::kCounter,
                     "Retries answered from their idempotency key instead of counted again, by "
                     "shard.");
    registry.AddCollector(
        [shards = sources.shards, hosted = sources.hosted](core::MetricSink& sink) {
          for (const core::Shard* shard : shards) {
            CollectShard(sink, shard->id(), shard->size(), shard->key_count(),
                         shard->increments_applied(), shard->key_replays());
          }
          if (hosted == nullptr) return;
          for (const core::HeldShardStats& held : hosted->Stats()) {
            CollectShard(sink, held.shard, held.counters, held.keys, held.applied,
                         held.key_replays);
          }
        });
    registry.Declare("shardctl_journal_write_duration_seconds", Type::kHistogram,
                     "Time to write a batch of journal records, every journal of the process.");
    registry.Declare("shardctl_journal_fsync_duration_seconds", Type::kHistogram,
                     "Time to fsync a journal (each write under --fsync always, each second "
                     "under everysec), every journal of the process.");
    registry.Declare("shardctl_compactions_total", Type::kCounter,
                     "Compactions made (a snapshot written, the journal started again), by shard.");
    registry.AddCollector([](core::MetricSink& sink) {
      store::StoreMetrics& store = store::ProcessStoreMetrics();
      sink.Histogram("shardctl_journal_write_duration_seconds", {}, store.journal_write.Read());
      sink.Histogram("shardctl_journal_fsync_duration_seconds", {}, store.journal_fsync.Read());
      for (const auto& [shard, done] : store.Compactions()) {
        sink.Sample("shardctl_compactions_total", {{"shard", std::to_string(shard)}},
                    static_cast<double>(done));
      }
    });
  }

  if (sources.aggregator != nullptr) {
    registry.Declare("shardctl_shard_up", Type::kGauge,
                     "1 when the aggregator sends to the shard, 0 while it is marked down.");
    registry.Declare("shardctl_shard_calls_total", Type::kCounter,
                     "The aggregator's calls to each shard by outcome: ok (it answered), refused "
                     "(not reached, or not asked while down), timeout (no answer in time).");
    registry.AddCollector([aggregator = sources.aggregator](core::MetricSink& sink) {
      for (const core::ShardState& state : aggregator->ShardHealth()) {
        const std::string shard = std::to_string(state.id);
        sink.Sample("shardctl_shard_up", {{"shard", shard}}, state.up ? 1 : 0);
        sink.Sample("shardctl_shard_calls_total", {{"shard", shard}, {"outcome", "ok"}},
                    static_cast<double>(state.calls_ok));
        sink.Sample("shardctl_shard_calls_total", {{"shard", shard}, {"outcome", "refused"}},
                    static_cast<double>(state.calls_refused));
        sink.Sample("shardctl_shard_calls_total", {{"shard", shard}, {"outcome", "timeout"}},
                    static_cast<double>(state.calls_timeout));
      }
    });
  }
}

}  // namespace shardctl::cmd
