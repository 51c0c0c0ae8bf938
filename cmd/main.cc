// shardctl: a sharded counter service and its command-line tool.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include "cmd/commands.h"
#include "cmd/exit_code.h"
#include "cmd/help_format.h"
#include "cmd/suggest.h"

namespace shardctl::cmd {
namespace {

// The names a mistyped word could have meant: the subcommands, or the long
// options of the subcommand given (or of the app).
std::vector<std::string> Candidates(const CLI::App& app, const CLI::App* command, bool option) {
  std::vector<std::string> names;
  if (!option) {
    for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
    return names;
  }
  for (const CLI::App* scope : {command, &app}) {
    if (scope == nullptr) continue;
    for (const CLI::Option* opt : scope->get_options({})) {
      for (const std::string& name : opt->get_lnames()) names.push_back("--" + name);
    }
  }
  return names;
}

// CLI11's message for `error`, with a suggestion when a word looks like a
// typo of a subcommand or option: "unknown subcommand 'totl'; did you mean
// 'total'?".
std::string Explain(const CLI::App& app, const CLI::ParseError& error) {
  const CLI::App* command = nullptr;
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (sub->parsed()) command = sub;
  }
  std::string_view message = error.what();
  constexpr std::string_view kConfigExtra = "INI was not able to parse ";
  if (message.starts_with(kConfigExtra)) {
    std::string key(message.substr(kConfigExtra.size()));
    std::string explained = fmt::format(
        "the config file has no option '{}'; serve's options go in its [serve] section, "
        "named as on the command line without the leading dashes",
        key);
    std::vector<std::string> keys;
    for (const CLI::App* sub : app.get_subcommands({})) {
      for (const CLI::Option* opt : sub->get_options({})) {
        for (const std::string& name : opt->get_lnames()) keys.push_back(sub->get_name() + "." + name);
      }
    }
    if (std::string match = ClosestMatch(key, keys); !match.empty()) {
      explained += fmt::format(" (did you mean '{}'?)", match);
    }
    return explained;
  }
  constexpr std::string_view kExtras = "not expected: ";
  size_t at = message.find(kExtras);
  if (at == std::string_view::npos) return std::string(message);
  // CLI11 lists the extra words in no useful order: look at the options.
  std::string_view words = message.substr(at + kExtras.size());
  while (!words.empty()) {
    std::string_view word = words.substr(0, words.find(' '));
    words.remove_prefix(std::min(words.size(), word.size() + 1));
    if (!word.starts_with("--")) continue;
    std::string typed(word.substr(0, word.find('=')));
    std::string match = ClosestMatch(typed, Candidates(app, command, true));
    if (!match.empty()) return fmt::format("unknown option '{}'; did you mean '{}'?", typed, match);
    return fmt::format("unknown option '{}'", typed);
  }
  return std::string(message);
}

// An unknown subcommand, with the closest one if it looks like a typo; ""
// when argv[1] is an option or a subcommand.
std::string UnknownSubcommand(const CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return {};
  std::string word = argv[1];
  std::vector<std::string> names = Candidates(app, nullptr, false);
  if (std::find(names.begin(), names.end(), word) != names.end()) return {};
  std::string match = ClosestMatch(word, names);
  if (!match.empty()) return fmt::format("unknown subcommand '{}'; did you mean '{}'?", word, match);
  return fmt::format("unknown subcommand '{}'; the subcommands are {}", word,
                     fmt::join(names, ", "));
}

}  // namespace
}  // namespace shardctl::cmd

int main(int argc, char** argv) {
  using shardctl::cmd::ExitCode;
  CLI::App app{"shardctl: a sharded counter service and its command-line tool"};
  app.formatter(std::make_shared<shardctl::cmd::HelpFormatter>());  // before the subcommands
  app.set_version_flag("--version", SHARDCTL_VERSION);
  app.require_subcommand(1);
  app.set_config("--config", "",
                 "Read serve's options from the [serve] section of this TOML file "
                 "(command-line options win)")
      ->type_name("FILE");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.footer("Run 'shardctl COMMAND --help' for a command's options.");

  shardctl::cmd::Runner runner;
  shardctl::cmd::SetupServe(app, runner);
  shardctl::cmd::SetupInc(app, runner);
  shardctl::cmd::SetupTotal(app, runner);
  shardctl::cmd::SetupCounters(app, runner);
  shardctl::cmd::SetupReset(app, runner);
  shardctl::cmd::SetupStatus(app, runner);
  shardctl::cmd::SetupTop(app, runner);
  shardctl::cmd::SetupStop(app, runner);
  shardctl::cmd::SetupBench(app, runner);
  shardctl::cmd::SetupCluster(app, runner);

  if (std::string unknown = shardctl::cmd::UnknownSubcommand(app, argc, argv); !unknown.empty()) {
    fmt::print(stderr, "shardctl: error: {}\nRun 'shardctl --help' for usage.\n", unknown);
    return static_cast<int>(ExitCode::kUsage);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help, --version
    fmt::print(stderr, "shardctl: error: {}\nRun 'shardctl --help' for usage.\n",
               shardctl::cmd::Explain(app, error));
    return static_cast<int>(ExitCode::kUsage);
  }
  return static_cast<int>(runner());
}
