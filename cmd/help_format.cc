#include "cmd/help_format.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace shardctl::cmd {
namespace {

// The names of `options` as the help shows them ("--duration"), sorted.
std::vector<std::string> NamesOf(const std::set<CLI::Option*>& options) {
  std::vector<std::string> names;
  for (const CLI::Option* option : options) names.push_back(option->get_name());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::string HelpFormatter::make_option(const CLI::Option* option, bool is_positional) const {
  // CLI11 pads the column to its width, which leaves one space only when the
  // column is one short of it; this keeps the columns apart in every case.
  std::string column = "  " + make_option_name(option, is_positional) + make_option_opts(option);
  const size_t width = get_column_width();
  if (column.size() + 2 > width) {
    column += "\n" + std::string(width, ' ');
  } else {
    column.resize(width, ' ');
  }
  return column + make_option_desc(option) + "\n";
}

std::string HelpFormatter::make_option_opts(const CLI::Option* option) const {
  if (!option->get_option_text().empty()) return option->get_option_text();
  if (option->get_type_size() == 0 || !option->nonpositional()) return "";
  // CLI11 appends each validator's description after a ':' ("INT:INT in
  // [1 - 1024]"); the word is what comes before.
  std::string type_name = option->get_type_name();
  std::string word = type_name.substr(0, type_name.find(':'));
  if (word.empty()) return "";
  bool repeated = option->get_expected_max() == CLI::detail::expected_max_vector_size;
  return fmt::format(" {}{}", word, repeated ? " ..." : "");
}

std::string HelpFormatter::make_option_desc(const CLI::Option* option) const {
  std::vector<std::string> notes;
  const std::string env = option->get_envname();
  const std::string fallback = option->get_default_str();
  if (!env.empty() && !fallback.empty()) {
    notes.push_back(fmt::format("default: ${}, else {}", env, fallback));
  } else if (!env.empty()) {
    notes.push_back(fmt::format("default: ${}", env));
  } else if (!fallback.empty()) {
    notes.push_back(fmt::format("default: {}", fallback));
  }
  if (!option->get_needs().empty()) {
    notes.push_back(fmt::format("needs {}", fmt::join(NamesOf(option->get_needs()), ", ")));
  }
  if (!option->get_excludes().empty()) {
    notes.push_back(fmt::format("not with {}", fmt::join(NamesOf(option->get_excludes()), ", ")));
  }
  if (option->get_required()) notes.push_back("required");
  if (notes.empty()) return option->get_description();
  return fmt::format("{} ({})", option->get_description(), fmt::join(notes, "; "));
}

CLI::Option* OneOf(CLI::Option* option, const std::vector<std::string>& words) {
  return option->check(CLI::IsMember(words))->type_name(fmt::format("{}", fmt::join(words, "|")));
}

}  // namespace shardctl::cmd
