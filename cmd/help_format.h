// How `shardctl --help` shows an option, as redis-cli, curl and git do: its
// value as one word ("--timeout SECONDS", "--fsync always|everysec|no"), and
// its default, environment variable and constraints in plain words after the
// description ("(default: 5)"), never CLI11's type names ("FLOAT:POSITIVE=5").
// Stateless, so thread-safe.
#ifndef SHARDCTL_CMD_HELP_FORMAT_H_
#define SHARDCTL_CMD_HELP_FORMAT_H_

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace shardctl::cmd {

// The formatter for the app; subcommands added after it is set share it.
// Each option that takes a value names it with `->type_name("SECONDS")`.
class HelpFormatter : public CLI::Formatter {
 public:
  // "  COLUMN  DESCRIPTION": at least two spaces between the two, or the
  // description on a line of its own when the column is too wide.
  std::string make_option(const CLI::Option* option, bool is_positional) const override;
  // " WORD" (" WORD ..." when the option may be repeated) for an option that
  // takes a value, "" for a flag or a positional (whose name is the word).
  std::string make_option_opts(const CLI::Option* option) const override;
  // The description, then in parentheses what else holds: "(default: 5)",
  // "(default: $SHARDCTL_URL, else http://127.0.0.1:4000)", "(not with
  // --duration)", "(required)".
  std::string make_option_desc(const CLI::Option* option) const override;
};

// Makes `option` take one of `words`, named by them in the help
// ("--fsync always|everysec|no"). Returns `option`.
CLI::Option* OneOf(CLI::Option* option, const std::vector<std::string>& words);

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_HELP_FORMAT_H_
