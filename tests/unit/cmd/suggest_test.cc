#include "cmd/suggest.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::cmd {
namespace {

const std::vector<std::string> kCommands = {"serve", "inc", "total", "counters", "reset",
                                            "status", "stop"};

TEST(ClosestMatchTest, OneOrTwoEditsAreATypo) {
  EXPECT_EQ(ClosestMatch("totl", kCommands), "total");      // a deletion
  EXPECT_EQ(ClosestMatch("sevre", kCommands), "serve");     // neighbours swapped
  EXPECT_EQ(ClosestMatch("countrs", kCommands), "counters");
  EXPECT_EQ(ClosestMatch("--shard-timout", {"--shards", "--shard-timeout"}), "--shard-timeout");
}

TEST(ClosestMatchTest, PicksTheNearestOfSeveral) {
  EXPECT_EQ(ClosestMatch("stats", kCommands), "status");  // 1 edit; stop is 3 away
  EXPECT_EQ(ClosestMatch("rset", kCommands), "reset");
}

TEST(ClosestMatchTest, FarOrShortWordsGetNoSuggestion) {
  EXPECT_EQ(ClosestMatch("frobnicate", kCommands), "");
  EXPECT_EQ(ClosestMatch("x", kCommands), "");     // one letter is never a typo of anything
  EXPECT_EQ(ClosestMatch("ic", kCommands), "");    // 1 edit, but half the word
  EXPECT_EQ(ClosestMatch("", kCommands), "");
}

}  // namespace
}  // namespace shardctl::cmd
