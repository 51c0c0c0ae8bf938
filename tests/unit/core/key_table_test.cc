#include "core/key_table.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

namespace shardctl::core {
namespace {

using ::testing::HasSubstr;

using test::Plain;
using test::Windowed;

constexpr int64_t kT0 = 1'699'999'200;
constexpr int64_t kWindow = 600;

IncrementRequest Keyed(std::string key, int64_t value, CounterRef counter = {}) {
  return IncrementRequest{value, std::move(counter), std::move(key)};
}

// Runs `request` through the table as a shard does, answering `reply`.
void Serve(KeyTable& table, const IncrementRequest& request, const IncrementReply& reply,
           int64_t now = kT0) {
  Result<std::optional<IncrementReply>> begun = table.Begin(request, now);
  ASSERT_TRUE(begun.ok()) << begun.status().message();
  ASSERT_FALSE(begun->has_value()) << "the key was not new";
  table.Applied(request.idempotency_key, reply);
  table.Finish(request.idempotency_key);
}

TEST(KeyTableTest, NewKeyIsReservedForTheRequest) {
  KeyTable table(kWindow);
  Result<std::optional<IncrementReply>> begun = table.Begin(Keyed("k1", 5), kT0);
  ASSERT_TRUE(begun.ok()) << begun.status().message();
  EXPECT_FALSE(begun->has_value());
  EXPECT_EQ(table.size(), 1u);
}

TEST(KeyTableTest, RetryOfAnAnsweredKeyGetsTheFirstAnswer) {
  KeyTable table(kWindow);
  Serve(table, Keyed("k1", 5, Plain("hits")), {2, 17, 0});
  for (int64_t later : {kT0, kT0 + 1, kT0 + kWindow - 1}) {
    Result<std::optional<IncrementReply>> again = table.Begin(Keyed("k1", 5, Plain("hits")), later);
    ASSERT_TRUE(again.ok()) << again.status().message();
    ASSERT_TRUE(again->has_value());
    EXPECT_EQ(**again, (IncrementReply{2, 17, 0}));
  }
}

TEST(KeyTableTest, KeyReusedForAnotherIncrementIsKeyReusedNamingTheFirst) {
  KeyTable table(kWindow);
  Serve(table, Keyed("k1", 5, Windowed("api", 60)), {0, 5, kT0 + 60});
  const std::vector<IncrementRequest> others = {
      Keyed("k1", 6, Windowed("api", 60)),    // another value
      Keyed("k1", 5, Windowed("other", 60)),  // another counter
      Keyed("k1", 5, Windowed("api", 3600)),  // another window
      Keyed("k1", 5, Plain("api")),           // no window
  };
  for (const IncrementRequest& other : others) {
    Result<std::optional<IncrementReply>> begun = table.Begin(other, kT0 + 1);
    ASSERT_FALSE(begun.ok());
    EXPECT_EQ(begun.status().code(), Code::kKeyReused);
    EXPECT_THAT(begun.status().message(), HasSubstr("\"k1\""));
    EXPECT_THAT(begun.status().message(), HasSubstr(R"({"value":5,"counter":"api","window":60})"));
  }
  // The first answer is still there for a true retry.
  Result<std::optional<IncrementReply>> retry =
      table.Begin(Keyed("k1", 5, Windowed("api", 60)), kT0);
  ASSERT_TRUE(retry.ok() && retry->has_value());
  EXPECT_EQ((*retry)->count, 5);
}

TEST(KeyTableTest, RetryWhileTheFirstIsInFlightIsInProgress) {
  KeyTable table(kWindow);
  ASSERT_TRUE(table.Begin(Keyed("k1", 5), kT0).ok());
  Result<std::optional<IncrementReply>> reserved = table.Begin(Keyed("k1", 5), kT0);
  ASSERT_FALSE(reserved.ok());
  EXPECT_EQ(reserved.status().code(), Code::kInProgress);
  EXPECT_THAT(reserved.status().message(), HasSubstr("still being served"));

  table.Applied("k1", {0, 5, 0});  // applied, not yet durable: still in flight
  Result<std::optional<IncrementReply>> applied = table.Begin(Keyed("k1", 5), kT0);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), Code::kInProgress);

  table.Finish("k1");
  Result<std::optional<IncrementReply>> answered = table.Begin(Keyed("k1", 5), kT0);
  ASSERT_TRUE(answered.ok() && answered->has_value());
  EXPECT_EQ(**answered, (IncrementReply{0, 5, 0}));
}

TEST(KeyTableTest, MismatchIsReportedBeforeInFlight) {
  KeyTable table(kWindow);
  ASSERT_TRUE(table.Begin(Keyed("k1", 5), kT0).ok());
  Result<std::optional<IncrementReply>> other = table.Begin(Keyed("k1", 6), kT0);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Code::kKeyReused);
}

TEST(KeyTableTest, AbandonedKeyIsServedAfreshOnRetry) {
  KeyTable table(kWindow);
  ASSERT_TRUE(table.Begin(Keyed("k1", 5), kT0).ok());
  table.Abandon("k1");
  EXPECT_EQ(table.size(), 0u);
  Result<std::optional<IncrementReply>> retry = table.Begin(Keyed("k1", 5), kT0);
  ASSERT_TRUE(retry.ok());
  EXPECT_FALSE(retry->has_value());
}

TEST(KeyTableTest, KeysAreForgottenAWindowAfterTheyWereFirstSeen) {
  KeyTable table(kWindow);
  Serve(table, Keyed("old", 1), {0, 1, 0}, kT0);
  Serve(table, Keyed("new", 2), {0, 3, 0}, kT0 + 10);
  EXPECT_EQ(table.DropExpired(kT0 + kWindow - 1), 0u);
  EXPECT_EQ(table.DropExpired(kT0 + kWindow), 1u);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.DropExpired(kT0 + kWindow + 10), 1u);
  EXPECT_EQ(table.size(), 0u);
}

TEST(KeyTableTest, ExpiredKeyNotYetDroppedIsNewAgain) {
  KeyTable table(kWindow);
  Serve(table, Keyed("k1", 5), {0, 5, 0}, kT0);
  // Even for another increment: after the window the key means nothing.
  Result<std::optional<IncrementReply>> later = table.Begin(Keyed("k1", 7), kT0 + kWindow);
  ASSERT_TRUE(later.ok()) << later.status().message();
  EXPECT_FALSE(later->has_value());
}

TEST(KeyTableTest, KeyInFlightIsNeitherDroppedNorReplacedAfterTheWindow) {
  KeyTable table(kWindow);
  ASSERT_TRUE(table.Begin(Keyed("slow", 5), kT0).ok());
  EXPECT_EQ(table.DropExpired(kT0 + 2 * kWindow), 0u);
  Result<std::optional<IncrementReply>> retry = table.Begin(Keyed("slow", 5), kT0 + 2 * kWindow);
  ASSERT_FALSE(retry.ok());
  EXPECT_EQ(retry.status().code(), Code::kInProgress);
}

TEST(KeyTableTest, RestoredKeyAnswersRetriesUnlessItsWindowHasPassed) {
  KeyTable table(kWindow);
  table.Restore(Keyed("kept", 5, Plain("hits")), kT0, {1, 9, 0}, kT0 + kWindow - 1);
  table.Restore(Keyed("gone", 5), kT0, {1, 9, 0}, kT0 + kWindow);
  EXPECT_EQ(table.size(), 1u);
  Result<std::optional<IncrementReply>> retry =
      table.Begin(Keyed("kept", 5, Plain("hits")), kT0 + kWindow - 1);
  ASSERT_TRUE(retry.ok() && retry->has_value());
  EXPECT_EQ(**retry, (IncrementReply{1, 9, 0}));
}

TEST(KeyTableTest, CheckpointHoldsAppliedKeysWithinTheWindowAsKeyRecords) {
  KeyTable table(kWindow);
  Serve(table, Keyed("plain", 5, Plain("hits")), {0, 12, 0}, kT0);
  Serve(table, Keyed("windowed", -2, Windowed("api", 60)), {0, 3, kT0 + 60}, kT0 + 5);
  ASSERT_TRUE(table.Begin(Keyed("applied", 4), kT0).ok());
  table.Applied("applied", {0, 4, 0});
  ASSERT_TRUE(table.Begin(Keyed("reserved", 1), kT0).ok());  // not in the journal yet
  Serve(table, Keyed("expired", 1), {0, 1, 0}, kT0 - kWindow);

  std::vector<Record> records = table.Checkpoint(kT0 + 5);
  std::sort(records.begin(), records.end(),
            [](const Record& a, const Record& b) { return a.key < b.key; });
  auto key_record = [](std::string name, int64_t window, int64_t window_start, int64_t amount,
                       std::string key, int64_t time, int64_t count) {
    Record record;
    record.kind = Record::Kind::kKey;
    record.name = std::move(name);
    record.window = window;
    record.window_start = window_start;
    record.amount = amount;
    record.key = std::move(key);
    record.key_time = time;
    record.count = count;
    return record;
  };
  EXPECT_EQ(records, (std::vector<Record>{
                         key_record("default", 0, 0, 4, "applied", kT0, 4),
                         key_record("hits", 0, 0, 5, "plain", kT0, 12),
                         key_record("api", 60, kT0, -2, "windowed", kT0 + 5, 3),
                     }));
}

TEST(KeyTableTest, AnyValueKeyAnswersEveryValueOfItsCounterAndRefusesOtherCounters) {
  KeyTable table(kWindow);
  table.Restore(Keyed("order-1", 0, Windowed("api", 60)), kT0, {3, 9, kT0 + 60}, kT0,
                /*any_value=*/true);
  for (int64_t value : {int64_t{9}, int64_t{3}, int64_t{-1}, test::kMax}) {
    Result<std::optional<IncrementReply>> retry =
        table.Begin(Keyed("order-1", value, Windowed("api", 60)), kT0 + 1);
    ASSERT_TRUE(retry.ok() && retry->has_value()) << value;
    EXPECT_EQ(**retry, (IncrementReply{3, 9, kT0 + 60})) << value;
  }
  Result<std::optional<IncrementReply>> other =
      table.Begin(Keyed("order-1", 9, Windowed("api", 3600)), kT0 + 1);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Code::kKeyReused);
  Result<std::optional<IncrementReply>> plain = table.Begin(Keyed("order-1", 9), kT0 + 1);
  EXPECT_EQ(plain.status().code(), Code::kKeyReused);
}

TEST(KeyTableTest, CheckpointKeepsAnAnyValueKeyAsAnyValue) {
  KeyTable table(kWindow);
  table.Restore(Keyed("order-1", 0, Plain("hits")), kT0, {3, 9, 0}, kT0, /*any_value=*/true);
  std::vector<Record> records = table.Checkpoint(kT0);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].kind, Record::Kind::kAnyValueKey);
  EXPECT_EQ(records[0].key, "order-1");
  EXPECT_EQ(records[0].count, 9);
  EXPECT_EQ(records[0].key_time, kT0);
}

}  // namespace
}  // namespace shardctl::core
