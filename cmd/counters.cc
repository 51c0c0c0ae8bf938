// shardctl counters: lists counters with their totals, or the top K.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cmd/commands.h"
#include "cmd/common.h"
#include "core/protocol.h"

namespace shardctl::cmd {
namespace {

struct CountersOptions {
  ClientOptions client;
  std::string prefix;
  int top = 0;
  int limit = 0;
  std::string after;
};

void PrintTable(const core::CounterList& list) {
  size_t width = 4;  // "NAME"
  for (const auto& counter : list.counters) width = std::max(width, counter.name.size());
  fmt::print("{:<{}}  {:>20}\n", "NAME", width, "TOTAL");
  for (const auto& counter : list.counters) {
    fmt::print("{:<{}}  {:>20}\n", counter.name, width, counter.total);
  }
  if (!list.next.empty()) {
    fmt::print(stderr, "more counters follow: run again with --after {}\n", list.next);
  }
}

ExitCode RunCounters(const CountersOptions& options) {
  if (ExitCode loaded = LoadTlsFiles(options.client.tls); loaded != ExitCode::kOk) return loaded;
  core::Result<core::ListQuery> query = core::ParseListQuery(
      options.prefix.empty() ? std::nullopt : std::optional(options.prefix),
      options.top > 0 ? std::optional(std::to_string(options.top)) : std::nullopt,
      options.limit > 0 ? std::optional(std::to_string(options.limit)) : std::nullopt,
      options.after.empty() ? std::nullopt : std::optional(options.after));
  if (!query.ok()) return Fail(ExitCode::kUsage, query.status().message());

  std::string reply_body;
  ExitCode code =
      CallServer(options.client, "/counters" + core::ListQueryString(*query), nullptr, &reply_body);
  if (code != ExitCode::kOk) return code;
  return PrintReply(options.client, reply_body, core::ParseCounterList, PrintTable);
}

}  // namespace

void SetupCounters(CLI::App& app, Runner& runner) {
  auto options = std::make_shared<CountersOptions>();
  CLI::App* command = app.add_subcommand(
      "counters", "List counters and their totals, or the top K (a leaderboard)");
  command->add_option("--prefix", options->prefix, "Only counters whose name starts with PREFIX")
      ->type_name("PREFIX");
  command->add_option("--top", options->top, "The K highest totals, highest first")
      ->type_name("K")
      ->check(StrictInteger());
  command->add_option("--limit", options->limit, "At most N counters, by name (default: 1000)")
      ->type_name("N")
      ->check(StrictInteger());
  command->add_option("--after", options->after, "Start after this name (the next page)")
      ->type_name("NAME");
  AddClientOptions(*command, options->client);
  command->footer(
      "Examples: shardctl counters --prefix page:\n"
      "          shardctl counters --top 10");
  command->callback([options, &runner] { runner = [options] { return RunCounters(*options); }; });
}

}  // namespace shardctl::cmd
