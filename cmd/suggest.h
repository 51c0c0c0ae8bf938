// "Did you mean ...?" for a mistyped subcommand or option.
#ifndef SHARDCTL_CMD_SUGGEST_H_
#define SHARDCTL_CMD_SUGGEST_H_

#include <string>
#include <string_view>
#include <vector>

namespace shardctl::cmd {

// The candidate closest to `typed` by edit distance (insertions, deletions,
// substitutions, swaps of neighbours), if it is close enough to be a typo:
// at most 2 edits, and fewer than half of `typed`'s length. "" otherwise.
std::string ClosestMatch(std::string_view typed, const std::vector<std::string>& candidates);

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_SUGGEST_H_
