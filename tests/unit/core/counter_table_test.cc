#include "core/counter_table.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

using Cell = CounterTable::Cell;
using Part = CounterTable::Part;

RankQuery FirstByRank(size_t limit, std::string prefix = "") {
  RankQuery query;
  query.prefix = std::move(prefix);
  query.limit = limit;
  return query;
}

RankQuery AfterByRank(int64_t count, std::string name, size_t limit, std::string prefix = "") {
  RankQuery query = FirstByRank(limit, std::move(prefix));
  query.from_start = false;
  query.after = {count, std::move(name)};
  return query;
}

TEST(CounterTableTest, PlainAndWindowedPartsOfOneNameAreSeparate) {
  CounterTable table;
  EXPECT_EQ(table.Find("api", 0), std::nullopt);
  table.Set("api", 0, {5, 0});
  table.Set("api", 60, {3, 120});
  table.Set("api", 3600, {4, 0});
  EXPECT_EQ(table.Find("api", 0), (Cell{5, 0}));
  EXPECT_EQ(table.Find("api", 60), (Cell{3, 120}));
  EXPECT_EQ(table.Find("api", 3600), (Cell{4, 0}));
  EXPECT_EQ(table.Find("api", 10), std::nullopt);
  EXPECT_EQ(table.Find("ap", 0), std::nullopt);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.plain_count(), 1u);
  EXPECT_EQ(table.window_count(), 2u);

  EXPECT_TRUE(table.Erase("api", 60));
  EXPECT_FALSE(table.Erase("api", 60));
  EXPECT_EQ(table.Find("api", 3600), (Cell{4, 0}));
  EXPECT_TRUE(table.Erase("api", 0));
  EXPECT_EQ(table.Find("api", 0), std::nullopt);
  EXPECT_EQ(table.Find("api", 3600), (Cell{4, 0}));
  EXPECT_EQ(table.size(), 1u);
}

TEST(CounterTableTest, UpdateSeesThePartItFindsAndSetsWhatItReturnsOrNothing) {
  CounterTable table;
  std::vector<std::optional<Cell>> seen;
  auto add = [&](int64_t amount) {
    return [&seen, amount](std::optional<Cell> found) -> std::optional<Cell> {
      seen.push_back(found);
      if (amount == 0) return std::nullopt;  // refused: nothing changes
      return Cell{(found ? found->count : 0) + amount, 0};
    };
  };
  table.Update("a", 0, add(5));
  table.Update("a", 0, add(2));
  table.Update("a", 0, add(0));
  table.Update("b", 0, add(0));
  EXPECT_EQ(seen, (std::vector<std::optional<Cell>>{std::nullopt, Cell{5, 0}, Cell{7, 0},
                                                    std::nullopt}));
  EXPECT_EQ(table.Find("a", 0), (Cell{7, 0}));
  EXPECT_EQ(table.Find("b", 0), std::nullopt);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.Rank(FirstByRank(10)), (std::vector<CounterPart>{{"a", 7}}));
}

TEST(CounterTableTest, WindowedPartsAreNotListedOrRanked) {
  CounterTable table;
  table.Set("a", 60, {7, 0});
  table.Set("b", 0, {1, 0});
  EXPECT_EQ(table.ListPage("", "", 10), (std::vector<CounterPart>{{"b", 1}}));
  EXPECT_EQ(table.Rank(FirstByRank(10)), (std::vector<CounterPart>{{"b", 1}}));
}

TEST(CounterTableTest, EraseNameReturnsThePlainPartFirstThenTheWindowsAndLeavesOtherNames) {
  CounterTable table;
  table.Set("api", 60, {3, 120});
  table.Set("api", 0, {-2, 0});
  table.Set("api", 3600, {4, 0});
  table.Set("apis", 60, {9, 120});
  table.Set("ap", 0, {1, 0});
  std::vector<Part> parts = table.EraseName("api");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], (Part{0, {-2, 0}}));
  std::sort(parts.begin() + 1, parts.end(),
            [](const Part& a, const Part& b) { return a.window < b.window; });
  EXPECT_EQ(parts[1], (Part{60, {3, 120}}));
  EXPECT_EQ(parts[2], (Part{3600, {4, 0}}));
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.Find("apis", 60), (Cell{9, 120}));
  EXPECT_EQ(table.Find("ap", 0), (Cell{1, 0}));
  EXPECT_TRUE(table.EraseName("api").empty());
  EXPECT_TRUE(table.EraseName("never").empty());
}

TEST(CounterTableTest, ANameForgottenLeavesItsSpaceToTheNextNameOfItsLength) {
  CounterTable table;
  table.Set("aaaa", 0, {1, 0});
  table.Set("bbbb", 60, {2, 0});
  ASSERT_TRUE(table.Erase("aaaa", 0));
  ASSERT_TRUE(table.Erase("bbbb", 60));
  table.Set("cccc", 0, {3, 0});
  table.Set("dddd", 0, {4, 0});
  EXPECT_EQ(table.Find("aaaa", 0), std::nullopt);
  EXPECT_EQ(table.Find("bbbb", 60), std::nullopt);
  EXPECT_EQ(table.ListPage("", "", 10), (std::vector<CounterPart>{{"cccc", 3}, {"dddd", 4}}));
}

TEST(CounterTableTest, ForEachVisitsEveryPartOnce) {
  CounterTable table;
  table.Set("a", 0, {1, 0});
  table.Set("a", 60, {2, 60});
  table.Set("b", 60, {3, 0});
  table.Set("c", 0, {4, 0});
  ASSERT_TRUE(table.Erase("c", 0));
  std::vector<std::pair<std::string, Part>> seen;
  table.ForEach([&](std::string_view name, int64_t window, const Cell& cell) {
    seen.push_back({std::string(name), {window, cell}});
  });
  std::sort(seen.begin(), seen.end(), [](const auto& a, const auto& b) {
    return std::pair(a.first, a.second.window) < std::pair(b.first, b.second.window);
  });
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, Part>>{
                      {"a", {0, {1, 0}}}, {"a", {60, {2, 60}}}, {"b", {60, {3, 0}}}}));
}

// --- Expiry ------------------------------------------------------------------

TEST(CounterTableTest, DropExpiredLooksAtNoMoreThanItsSliceAndSaysWhenMoreEnded) {
  CounterTable table;
  for (int i = 0; i < 10; ++i) table.Set("w" + std::to_string(i), 60, {1, 0});  // end at 60
  table.Set("later", 60, {1, 60});                                               // ends at 120
  table.Set("plain", 0, {1, 0});

  EXPECT_EQ(table.DropExpired(59, 4).looked, 0u);
  size_t dropped = 0;
  size_t slices = 0;
  for (bool more = true; more; ++slices) {
    CounterTable::Expired slice = table.DropExpired(60, 4);
    EXPECT_LE(slice.looked, 4u);
    dropped += slice.dropped;
    more = slice.more;
  }
  EXPECT_EQ(dropped, 10u);
  EXPECT_EQ(slices, 3u);  // 4 + 4 + 2
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.Find("later", 60), (Cell{1, 60}));
  EXPECT_EQ(table.Find("w3", 60), std::nullopt);
}

TEST(CounterTableTest, DropExpiredKeepsAWindowThatMovedOnAndOneSetAgainAfterItsErase) {
  CounterTable table;
  table.Set("moved", 60, {1, 0});
  table.Set("moved", 60, {2, 60});  // now counts the window ending at 120
  table.Set("again", 60, {1, 0});
  ASSERT_TRUE(table.Erase("again", 60));
  table.Set("again", 60, {5, 60});
  EXPECT_EQ(table.DropExpired(60, 100).dropped, 0u);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.DropExpired(120, 100).dropped, 2u);
  EXPECT_EQ(table.size(), 0u);
}

// --- The ordered indexes, against a plain model -------------------------------

// The same operations on a std::map, and every page checked against it.
TEST(CounterTableTest, PagesByNameAndByRankMatchASortedModelThroughRandomChanges) {
  std::mt19937 random(17);
  CounterTable table;
  std::map<std::string, int64_t> model;
  const std::vector<std::string> prefixes = {"", "a", "a:", "b:1", "zz"};
  auto name_of = [&](int n) {
    // Short names, and long ones whose first 8 bytes are the same.
    static const char* kHeads[] = {"a:", "b:", "a", "b:1", "a:long:name:"};
    return kHeads[n % 5] + std::to_string(n / 5);
  };
  for (int step = 0; step < 3000; ++step) {
    const std::string name = name_of(static_cast<int>(random() % 200));
    if (random() % 5 == 0) {
      EXPECT_EQ(table.Erase(name, 0), model.erase(name) == 1);
    } else {
      const int64_t count = static_cast<int64_t>(random() % 21) - 10;  // ties and negatives
      table.Set(name, 0, {count, 0});
      model[name] = count;
    }
    if (step % 100 != 99) continue;

    std::vector<CounterPart> by_name;
    for (const auto& [n, c] : model) by_name.push_back({n, c});
    std::vector<CounterPart> by_rank = by_name;
    std::stable_sort(by_rank.begin(), by_rank.end(),
                     [](const CounterPart& a, const CounterPart& b) { return a.count > b.count; });
    ASSERT_EQ(table.ListPage("", "", 1000), by_name);
    ASSERT_EQ(table.Rank(FirstByRank(1000)), by_rank);
    ASSERT_EQ(table.plain_count(), model.size());

    for (const std::string& prefix : prefixes) {
      auto has_prefix = [&](const CounterPart& part) { return part.name.starts_with(prefix); };
      std::vector<CounterPart> named, ranked;
      std::copy_if(by_name.begin(), by_name.end(), std::back_inserter(named), has_prefix);
      std::copy_if(by_rank.begin(), by_rank.end(), std::back_inserter(ranked), has_prefix);
      // Pages of 7 from each place in either order, cursors held or not.
      for (size_t i = 0; i < ranked.size(); i += 5) {
        const size_t end = std::min(ranked.size(), i + 1 + 7);
        ASSERT_EQ(table.Rank(AfterByRank(ranked[i].count, ranked[i].name, 7, prefix)),
                  std::vector<CounterPart>(ranked.begin() + i + 1, ranked.begin() + end))
            << prefix << " after " << ranked[i].name;
        ASSERT_EQ(table.ListPage(prefix, named[i].name, 7),
                  std::vector<CounterPart>(named.begin() + i + 1,
                                           named.begin() + std::min(named.size(), i + 1 + 7)))
            << prefix << " after " << named[i].name;
      }
      ASSERT_EQ(table.Rank(FirstByRank(3, prefix)),
                std::vector<CounterPart>(ranked.begin(),
                                         ranked.begin() + std::min<size_t>(3, ranked.size())));
      // A cursor that is no counter: between ties, and a count nobody has.
      for (int64_t count : {-11, -3, 0, 4, 11}) {
        std::vector<CounterPart> expected;
        for (const CounterPart& part : ranked) {
          if (part.count < count || (part.count == count && part.name > "b:")) {
            expected.push_back(part);
          }
        }
        if (expected.size() > 5) expected.resize(5);
        ASSERT_EQ(table.Rank(AfterByRank(count, "b:", 5, prefix)), expected)
            << prefix << " after " << count;
      }
    }
  }
}

TEST(CounterTableTest, ARankCursorWhoseCounterMovedSkipsThatCounter) {
  CounterTable table;
  table.Set("a", 0, {5, 0});
  table.Set("b", 0, {4, 0});
  table.Set("c", 0, {3, 0});
  table.Set("b", 0, {2, 0});  // the cursor (4, "b") no longer holds: b moved down
  EXPECT_EQ(table.Rank(AfterByRank(4, "b", 10)), (std::vector<CounterPart>{{"c", 3}}));
  EXPECT_EQ(table.Rank(AfterByRank(4, "b", 10, "b")), (std::vector<CounterPart>{}));
}

TEST(CounterTableTest, ARankWithARarePrefixAmongManyNamesFindsItsFewNames) {
  CounterTable table;
  for (int i = 0; i < 5000; ++i) table.Set("c:" + std::to_string(i), 0, {i, 0});
  table.Set("rare:1", 0, {-1, 0});
  table.Set("rare:2", 0, {7, 0});
  EXPECT_EQ(table.Rank(FirstByRank(10, "rare:")),
            (std::vector<CounterPart>{{"rare:2", 7}, {"rare:1", -1}}));
  EXPECT_EQ(table.Rank(FirstByRank(2, "c:")),
            (std::vector<CounterPart>{{"c:4999", 4999}, {"c:4998", 4998}}));
}

}  // namespace
}  // namespace shardctl::core
