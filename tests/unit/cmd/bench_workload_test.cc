#include "cmd/bench_workload.h"

#include <cstdint>
#include <set>

#include <gtest/gtest.h>

namespace shardctl::cmd {
namespace {

TEST(BenchWorkloadTest, ValuesCycleFrom1To60) {
  EXPECT_EQ(BenchValue(0), 1);
  EXPECT_EQ(BenchValue(59), 60);
  EXPECT_EQ(BenchValue(60), 1);
  EXPECT_EQ(BenchValue(2000), 21);
}

TEST(BenchWorkloadTest, ValueSumMatchesTheSequence) {
  for (int64_t count : {0, 1, 59, 60, 61, 2000, 12345}) {
    int64_t sum = 0;
    for (int64_t i = 0; i < count; ++i) sum += BenchValue(i);
    EXPECT_EQ(BenchValueSum(count), sum) << count;
  }
  EXPECT_EQ(BenchValueSum(2000), 60600);
}

TEST(BenchWorkloadTest, EveryShardCountThatDivides60GetsAnEvenShare) {
  for (int shards : {1, 2, 3, 4, 5, 6, 10, 12}) {
    std::multiset<int64_t> per_shard;
    for (int64_t i = 0; i < kValueCycle; ++i) per_shard.insert(BenchValue(i) % shards);
    for (int shard = 0; shard < shards; ++shard) {
      EXPECT_EQ(per_shard.count(shard), static_cast<size_t>(kValueCycle / shards)) << shards;
    }
  }
}

TEST(BenchWorkloadTest, SingleIncrementIsTheOriginalRequest) {
  BenchBody body = IncrementBody(2, 1, {});
  EXPECT_EQ(body.json, R"({"value":3})");
  EXPECT_EQ(body.increments, 1);
  EXPECT_EQ(body.sum, 3);
  EXPECT_EQ(IncrementBody(0, 1, {.name = "pageviews", .window = 60}).json,
            R"({"value":1,"counter":"pageviews","window":60})");
}

TEST(BenchWorkloadTest, BatchCarriesConsecutiveValues) {
  BenchBody body = IncrementBody(1, 3, {});  // increments 3, 4, 5
  EXPECT_EQ(body.json, R"({"values":[4,5,6]})");
  EXPECT_EQ(body.increments, 3);
  EXPECT_EQ(body.sum, 15);
  EXPECT_EQ(IncrementBody(19, 3, {}).json, R"({"values":[58,59,60]})");
  EXPECT_EQ(IncrementBody(20, 3, {}).json, R"({"values":[1,2,3]})");
  EXPECT_EQ(IncrementBody(0, 2, {.name = "api:c42"}).json,
            R"({"values":[1,2],"counter":"api:c42"})");
}

TEST(BenchWorkloadTest, PrecomputedBodiesRepeatEvery60Requests) {
  for (int batch : {1, 7, 60, 100}) {
    std::vector<BenchBody> bodies = IncrementBodies(batch, {});
    ASSERT_EQ(bodies.size(), static_cast<size_t>(kValueCycle));
    int64_t sum = 0;
    for (int64_t r = 0; r < 1000; ++r) {
      EXPECT_EQ(bodies[r % kValueCycle].json, IncrementBody(r, batch, {}).json);
      sum += bodies[r % kValueCycle].sum;
    }
    EXPECT_EQ(sum, BenchValueSum(1000 * batch)) << batch;
  }
}

}  // namespace
}  // namespace shardctl::cmd
