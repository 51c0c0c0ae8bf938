// shardctl status: every shard as the aggregator sees it: address, up or
// down and since when, the last error, its count.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "core/protocol.h"

namespace shardctl::cmd {
namespace {

// "2026-12-01T07:01:02Z (35s ago)"
std::string FormatSince(int64_t since, int64_t now) {
  int64_t ago = std::max<int64_t>(0, now - since);
  std::string elapsed = ago < 120     ? fmt::format("{}s", ago)
                        : ago < 7200  ? fmt::format("{}m", ago / 60)
                        : ago < 172800 ? fmt::format("{}h", ago / 3600)
                                       : fmt::format("{}d", ago / 86400);
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ} ({} ago)", fmt::gmtime(static_cast<std::time_t>(since)),
                     elapsed);
}

void PrintTable(const std::vector<core::ShardState>& states) {
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  size_t width = 7;  // "ADDRESS"
  for (const auto& state : states) width = std::max(width, state.address.size());
  fmt::print("{:<5}  {:<{}}  {:<5}  {:<30}  {:>20}  {}\n", "SHARD", "ADDRESS", width, "STATE",
             "SINCE", "COUNT", "LAST ERROR");
  // Padded before colouring, so that escape codes do not upset the columns.
  const std::string up_text = Colored("up   ", 32);
  const std::string down_text = Colored("down ", 31);
  int up = 0;
  for (const auto& state : states) {
    up += state.up ? 1 : 0;
    fmt::print("{:<5}  {:<{}}  {}  {:<30}  {:>20}  {}\n", state.id, state.address, width,
               state.up ? up_text : down_text, FormatSince(state.since, now),
               state.count ? std::to_string(*state.count) : "-",
               state.last_error.empty() ? "-" : state.last_error);
  }
  fmt::print("{} of {} shards up\n", up, states.size());
}

ExitCode RunStatus(const ClientOptions& options) {
  if (ExitCode loaded = LoadTlsFiles(options.tls); loaded != ExitCode::kOk) return loaded;
  std::string reply_body;
  ExitCode code = CallServer(options, "/shards", nullptr, &reply_body);
  if (code != ExitCode::kOk) return code;
  core::Result<std::vector<core::ShardState>> states = core::ParseShardStates(reply_body);
  if (!states.ok()) return Fail(ExitCode::kServerFailed, states.status().message());
  code = PrintReply(options, reply_body, core::ParseShardStates, PrintTable);
  if (code != ExitCode::kOk) return code;
  bool all_up = std::all_of(states->begin(), states->end(),
                            [](const core::ShardState& state) { return state.up; });
  return all_up ? ExitCode::kOk : ExitCode::kServerFailed;
}

}  // namespace

void SetupStatus(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<ClientOptions>();
  CLI::App* command = app.add_subcommand(
      "status", "Show every shard: address, up or down and since when, last error, count");
  AddClientOptions(*command, *options);
  command->footer(
      "Exits 0 when every shard is up, 4 when any is down.\n"
      "Examples: shardctl status\n"
      "          shardctl status --json\n"
      "          shardctl status >/dev/null || echo 'a shard is down'");
  command->callback([options, &runner] { runner = [options] { return RunStatus(*options); }; });
}

}  // namespace shardctl::cmd
