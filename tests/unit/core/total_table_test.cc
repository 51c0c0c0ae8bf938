#include "core/total_table.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/counter_table.h"
#include "core/shard.h"

namespace shardctl::core {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Three shards' tables telling one TotalTable of their changes, and the
// parts of each as a model.
struct ThreeTables {
  ThreeTables() {
    for (int i = 0; i < 3; ++i) tables.push_back(std::make_unique<CounterTable>(&totals));
  }
  void Set(int shard, const std::string& name, int64_t count) {
    tables[static_cast<size_t>(shard)]->Set(name, 0, {count, 0});
    parts[name][shard] = count;
  }
  void Erase(int shard, const std::string& name) {
    tables[static_cast<size_t>(shard)]->Erase(name, 0);
    parts[name].erase(shard);
    if (parts[name].empty()) parts.erase(name);
  }
  // Every total with `prefix`, highest first, ties by name.
  std::vector<CounterPart> Expected(const std::string& prefix = "") const {
    std::vector<CounterPart> all;
    for (const auto& [name, by_shard] : parts) {
      if (!name.starts_with(prefix)) continue;
      int64_t total = 0;
      for (const auto& [shard, count] : by_shard) total += count;
      all.push_back({name, total});
    }
    std::sort(all.begin(), all.end(), [](const CounterPart& a, const CounterPart& b) {
      return a.count != b.count ? a.count > b.count : a.name < b.name;
    });
    return all;
  }

  TotalTable totals;
  std::vector<std::unique_ptr<CounterTable>> tables;
  std::map<std::string, std::map<int, int64_t>> parts;
};

TEST(TotalTableTest, HoldsEveryTotalInRankOrderThroughRandomChangesOnThreeShards) {
  std::mt19937 random(3);
  ThreeTables shards;
  for (int step = 0; step < 20000; ++step) {
    const std::string name = (random() % 3 == 0 ? "x:" : "c:") + std::to_string(random() % 300);
    const int shard = static_cast<int>(random() % 3);
    if (random() % 6 == 0) {
      shards.Erase(shard, name);
    } else {
      shards.Set(shard, name, static_cast<int64_t>(random() % 41) - 20);  // ties, negatives
    }
    if (step % 500 != 499) continue;
    const std::vector<CounterPart> all = shards.Expected();
    ASSERT_EQ(shards.totals.size(), all.size());
    ASSERT_EQ(shards.totals.Top("", 100000, 0), all);
    std::vector<CounterPart> top7(all.begin(), all.begin() + std::min<size_t>(7, all.size()));
    ASSERT_EQ(shards.totals.Top("", 7, 0), top7);
    std::vector<CounterPart> x = shards.Expected("x:");
    x.resize(std::min<size_t>(x.size(), 5));
    ASSERT_EQ(shards.totals.Top("x:", 5, 100000), x);
  }
  // Every part gone: no total left.
  for (auto& [name, by_shard] : std::map(shards.parts)) {
    for (auto& [shard, count] : by_shard) shards.Erase(shard, name);
  }
  EXPECT_EQ(shards.totals.size(), 0u);
  EXPECT_EQ(shards.totals.Top("", 10, 0), std::vector<CounterPart>());
}

TEST(TotalTableTest, ACounterWhosePartsAddUpToZeroIsStillListed) {
  ThreeTables shards;
  shards.Set(0, "a", 5);
  shards.Set(1, "a", -5);
  shards.Set(2, "b", -1);
  EXPECT_EQ(shards.totals.Top("", 10, 0), (std::vector<CounterPart>{{"a", 0}, {"b", -1}}));
}

TEST(TotalTableTest, ATotalOutsideInt64IsNotRankedAndMakesTopDeclineUntilItIsBack) {
  ThreeTables shards;
  shards.Set(0, "big", kMax);
  shards.Set(1, "small", 1);
  shards.Set(2, "big", kMax);  // 2^64 - 2: no int64 holds it
  EXPECT_EQ(shards.totals.Top("", 10, 0), std::nullopt);
  shards.Set(2, "big", -kMax);  // back to 0
  EXPECT_EQ(shards.totals.Top("", 10, 0), (std::vector<CounterPart>{{"small", 1}, {"big", 0}}));
  shards.Set(2, "big", kMax);
  shards.Erase(0, "big");  // out and back in by a removal
  EXPECT_EQ(shards.totals.Top("", 10, 0), (std::vector<CounterPart>{{"big", kMax}, {"small", 1}}));
}

TEST(TotalTableTest, APrefixFewNamesHoldIsDeclinedOncePastTheNamesItMayPassOver) {
  ThreeTables shards;
  for (int i = 0; i < 100; ++i) shards.Set(i % 3, "c:" + std::to_string(i), 1000 + i);
  shards.Set(0, "rare", 1);
  EXPECT_EQ(shards.totals.Top("rare", 1, 99), std::nullopt);
  EXPECT_EQ(shards.totals.Top("rare", 1, 100), (std::vector<CounterPart>{{"rare", 1}}));
  EXPECT_EQ(shards.totals.Top("nothing", 1, 101), std::vector<CounterPart>());
}

TEST(TotalTableTest, AShardReportingLateAddsWhatItHoldsAndEveryChangeAfter) {
  TotalTable totals;
  Shard a(0), b(1);
  for (Shard* shard : {&a, &b}) {
    for (int i = 0; i < 50; ++i) {
      IncrementRequest request;
      request.value = i + shard->id();
      request.counter.name = "c:" + std::to_string(i);
      ASSERT_TRUE(shard->Increment(request).ok());
    }
  }
  a.ReportTotalsTo(totals);
  b.ReportTotalsTo(totals);
  EXPECT_EQ(totals.size(), 50u);
  EXPECT_EQ(totals.Top("", 2, 0), (std::vector<CounterPart>{{"c:49", 49 + 50}, {"c:48", 48 + 49}}));
  IncrementRequest request;
  request.value = 1000;
  request.counter.name = "c:0";
  ASSERT_TRUE(a.Increment(request).ok());
  EXPECT_EQ(a.Reset("c:49").value(), 49);
  // c:49 keeps b's part alone (50), below c:48's 48 + 49.
  EXPECT_EQ(totals.Top("", 3, 0),
            (std::vector<CounterPart>{{"c:0", 1001}, {"c:48", 97}, {"c:47", 95}}));
  EXPECT_EQ(totals.size(), 50u);
}

TEST(TotalTableTest, FilledOnFirstUseFromShardsThatChangedBeforeAndAfter) {
  TotalTable totals;
  Shard a(0), b(1);
  auto add = [](Shard& shard, const std::string& name, int64_t value) {
    IncrementRequest request;
    request.value = value;
    request.counter.name = name;
    ASSERT_TRUE(shard.Increment(request).ok());
  };
  add(a, "x", 5);
  add(b, "x", 6);
  add(b, "y", 3);
  totals.FillOnFirstUse({&a, &b});
  add(a, "y", 100);              // before the first Top: read with the shard's parts
  EXPECT_EQ(totals.size(), 0u);  // nothing is made until asked
  EXPECT_EQ(totals.Top("", 5, 0), (std::vector<CounterPart>{{"y", 103}, {"x", 11}}));
  add(b, "x", 200);  // after it: told as it happens
  EXPECT_EQ(totals.Top("", 5, 0), (std::vector<CounterPart>{{"x", 211}, {"y", 103}}));
}

}  // namespace
}  // namespace shardctl::core
