// shardctl total: prints a counter's total over every shard.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "core/protocol.h"

namespace shardctl::cmd {
namespace {

constexpr int kBarWidth = 40;

struct TotalOptions {
  ClientOptions client;
  CounterOptions counter;
  bool per_shard = false;
  bool partial = false;
};

// One line per shard: its part, and on a terminal a bar as long as the part
// is large, so a hot shard shows at a glance.
void PrintPerShard(const core::TotalReply& reply) {
  const bool bars = isatty(STDOUT_FILENO) == 1;
  uint64_t largest = 1;
  for (int64_t part : reply.parts)
    largest = std::max(largest, static_cast<uint64_t>(std::abs(part)));
  for (size_t i = 0; i < reply.parts.size(); ++i) {
    int64_t part = reply.parts[i];
    bool missing = std::any_of(reply.missing.begin(), reply.missing.end(),
                               [i](const core::MissingPart& m) { return m.shard_id == static_cast<int>(i); });
    if (missing) {
      fmt::print("shard {:<3} {:>20}\n", i, "missing");
      continue;
    }
    std::string line = fmt::format("shard {:<3} {:>20}", i, part);
    if (bars) {
      auto magnitude = static_cast<double>(part < 0 ? -static_cast<double>(part) : part);
      int length = static_cast<int>(magnitude / static_cast<double>(largest) * kBarWidth + 0.5);
      std::string bar;
      for (int j = 0; j < length; ++j) bar += "\u2588";
      line += fmt::format(" {}{}", part < 0 ? "-" : " ", bar);
    }
    fmt::print("{}\n", line);
  }
  fmt::print("total     {:>20}\n", reply.total);
}

ExitCode RunTotal(const TotalOptions& options) {
  if (ExitCode loaded = LoadTlsFiles(options.client.tls); loaded != ExitCode::kOk) return loaded;
  core::Result<core::CounterRef> counter = ToCounterRef(options.counter);
  if (!counter.ok()) return Fail(ExitCode::kUsage, counter.status().message());
  std::string path = "/total" + core::CounterQueryString(*counter);
  auto add_flag = [&path](std::string_view flag) {
    path += fmt::format("{}{}=true", path.find('?') == std::string::npos ? '?' : '&', flag);
  };
  if (options.per_shard) add_flag("perShard");
  if (options.partial) add_flag("partial");

  std::string reply_body;
  ExitCode code = CallServer(options.client, path, nullptr, &reply_body);
  if (code != ExitCode::kOk) return code;
  return PrintReply(options.client, reply_body, core::ParseTotalReply,
                    [&](const core::TotalReply& reply) {
                      if (options.per_shard) {
                        PrintPerShard(reply);
                      } else {
                        fmt::print("{}\n", reply.total);
                      }
                      // The total goes to stdout as usual; what it lacks, to
                      // stderr, so that a script reading the number still can.
                      for (const core::MissingPart& part : reply.missing) {
                        fmt::print(stderr, "shardctl: warning: partial total without shard {}: {}\n",
                                   part.shard_id, part.error);
                      }
                    });
}

}  // namespace

void SetupTotal(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<TotalOptions>();
  CLI::App* command =
      app.add_subcommand("total", "Print a counter's total over every shard as a bare integer");
  AddCounterOptions(*command, options->counter);
  command->add_flag("--per-shard", options->per_shard,
                    "Show each shard's part (with bars on a terminal)");
  command->add_flag("--partial", options->partial,
                    "If shards are down, print the sum of the others (and warn on stderr) "
                    "instead of failing");
  AddClientOptions(*command, options->client);
  command->footer(
      "Examples: shardctl total\n"
      "          shardctl total --counter pageviews --per-shard\n"
      "          shardctl total -k api:client42 --window 60\n"
      "          shardctl total --partial 2>/dev/null");
  command->callback([options, &runner] { runner = [options] { return RunTotal(*options); }; });
}

}  // namespace shardctl::cmd
