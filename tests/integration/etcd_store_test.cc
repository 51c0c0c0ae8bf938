// topo::EtcdStore against a real etcd 3.4: each test starts its own member
// (tests/integration/etcd_harness.h) and talks to it over the v3 JSON gateway.
#include "topo/etcd_store.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/etcd_harness.h"
#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using core::Code;
using core::KeyValue;
using core::WatchEvent;
using Clock = std::chrono::steady_clock;

std::unique_ptr<topo::EtcdStore> Open(const std::string& endpoints) {
  core::Result<std::unique_ptr<topo::EtcdStore>> store = topo::OpenEtcdStore(endpoints, 2s);
  EXPECT_TRUE(store.ok()) << store.status().message();
  return store.ok() ? std::move(store).value() : nullptr;
}

// Reads `watch` until `count` events came, a failure, or `timeout`.
std::vector<WatchEvent> ReadEvents(core::Watch& watch, size_t count,
                                   std::chrono::milliseconds timeout = 10s) {
  std::vector<WatchEvent> events;
  auto deadline = Clock::now() + timeout;
  while (events.size() < count && Clock::now() < deadline) {
    core::Result<std::vector<WatchEvent>> more = watch.Next(100ms);
    EXPECT_TRUE(more.ok()) << more.status().message();
    if (!more.ok()) break;
    events.insert(events.end(), more->begin(), more->end());
  }
  return events;
}

// Calls Next until the watch fails, and returns that failure's code (kOk if
// it did not fail within `timeout`).
Code WatchFailure(core::Watch& watch, std::chrono::milliseconds timeout = 10s) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    core::Result<std::vector<WatchEvent>> events = watch.Next(100ms);
    if (!events.ok()) return events.status().code();
  }
  return Code::kOk;
}

class EtcdStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd_.ready()); }

  // Sets `key` whatever its revision; returns the new mod revision.
  int64_t Put(const std::string& key, const std::string& value, core::LeaseId lease = 0) {
    core::Result<std::optional<KeyValue>> current = store_->Get(key);
    EXPECT_TRUE(current.ok()) << current.status().message();
    int64_t expected = current.ok() && current->has_value() ? (*current)->mod_revision : 0;
    core::Result<core::CasResult> result = store_->CompareAndSet(key, expected, value, lease);
    EXPECT_TRUE(result.ok() && result->succeeded) << key;
    return result.ok() ? result->revision : 0;
  }

  bool Has(const std::string& key) {
    core::Result<std::optional<KeyValue>> kv = store_->Get(key);
    EXPECT_TRUE(kv.ok()) << kv.status().message();
    return kv.ok() && kv->has_value();
  }

  EtcdServer etcd_;
  std::unique_ptr<topo::EtcdStore> store_ = Open(etcd_.url());
};

TEST_F(EtcdStoreTest, CreatesAnAbsentKeyAndReadsItBack) {
  core::Result<std::optional<KeyValue>> absent = store_->Get("/t/a");
  ASSERT_TRUE(absent.ok()) << absent.status().message();
  EXPECT_FALSE(absent->has_value());

  core::Result<core::CasResult> created = store_->CompareAndSet("/t/a", 0, "v1");
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_TRUE(created->succeeded);
  EXPECT_GT(created->revision, 1);
  EXPECT_EQ(**store_->Get("/t/a"), (KeyValue{"/t/a", "v1", created->revision, 0}));

  // Create-if-absent again: refused, with the key's revision.
  core::Result<core::CasResult> again = store_->CompareAndSet("/t/a", 0, "v2");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_FALSE(again->succeeded);
  EXPECT_EQ(again->revision, created->revision);
}

TEST_F(EtcdStoreTest, CompareAndSetNeedsTheKeysRevision) {
  int64_t first = Put("/t/a", "v1");
  Put("/t/other", "x");  // the store's revision moves on, the key's does not

  core::Result<core::CasResult> wrong = store_->CompareAndSet("/t/a", first + 1, "stale");
  ASSERT_TRUE(wrong.ok()) << wrong.status().message();
  EXPECT_FALSE(wrong->succeeded);
  EXPECT_EQ(wrong->revision, first);
  EXPECT_EQ((*store_->Get("/t/a"))->value, "v1");

  core::Result<core::CasResult> right = store_->CompareAndSet("/t/a", first, "v2");
  ASSERT_TRUE(right.ok()) << right.status().message();
  EXPECT_TRUE(right->succeeded);
  EXPECT_EQ(right->revision, first + 2);
  EXPECT_EQ(**store_->Get("/t/a"), (KeyValue{"/t/a", "v2", first + 2, 0}));
}

TEST_F(EtcdStoreTest, CompareAndDeleteNeedsTheKeysRevision) {
  int64_t revision = Put("/t/a", "v1");
  core::Result<core::CasResult> wrong = store_->CompareAndDelete("/t/a", revision - 1);
  ASSERT_TRUE(wrong.ok()) << wrong.status().message();
  EXPECT_FALSE(wrong->succeeded);
  EXPECT_EQ(wrong->revision, revision);
  EXPECT_TRUE(Has("/t/a"));

  core::Result<core::CasResult> right = store_->CompareAndDelete("/t/a", revision);
  ASSERT_TRUE(right.ok()) << right.status().message();
  EXPECT_TRUE(right->succeeded);
  EXPECT_EQ(right->revision, revision + 1);
  EXPECT_FALSE(Has("/t/a"));

  // An absent key, expected absent: nothing to delete, the store's revision.
  core::Result<core::CasResult> absent = store_->CompareAndDelete("/t/a", 0);
  ASSERT_TRUE(absent.ok()) << absent.status().message();
  EXPECT_TRUE(absent->succeeded);
  EXPECT_EQ(absent->revision, revision + 1);
}

TEST_F(EtcdStoreTest, ListReturnsThePrefixInKeyOrderWithTheRevision) {
  int64_t last = 0;
  for (const char* key : {"/n/2", "/n/1", "/m/1", "/n", "/n/1/x"}) last = Put(key, "v");
  core::Result<core::KeyRange> range = store_->List("/n/");
  ASSERT_TRUE(range.ok()) << range.status().message();
  EXPECT_EQ(range->revision, last);
  std::vector<std::string> keys;
  for (const KeyValue& kv : range->kvs) keys.push_back(kv.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"/n/1", "/n/1/x", "/n/2"}));
  EXPECT_EQ(store_->List("")->kvs.size(), 5u);
}

TEST_F(EtcdStoreTest, AnAnswerOverTwoKilobytesComesChunkedAndIsRead) {
  std::string value(500, 'x');
  for (int i = 0; i < 20; ++i) Put("/big/" + std::to_string(i), value);
  core::Result<core::KeyRange> range = store_->List("/big/");
  ASSERT_TRUE(range.ok()) << range.status().message();
  EXPECT_EQ(range->kvs.size(), 20u);
  EXPECT_EQ(range->kvs[0].value, value);
}

TEST_F(EtcdStoreTest, RevokingALeaseDeletesItsKeys) {
  core::Result<core::LeaseId> lease = store_->GrantLease(30);
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  Put("/nodes/1", "up", *lease);
  EXPECT_EQ((*store_->Get("/nodes/1"))->lease, *lease);
  ASSERT_TRUE(store_->KeepAlive(*lease).ok());

  ASSERT_TRUE(store_->RevokeLease(*lease).ok());
  EXPECT_FALSE(Has("/nodes/1"));
  // The lease is gone: grant a new one.
  EXPECT_EQ(store_->KeepAlive(*lease).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->RevokeLease(*lease).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->CompareAndSet("/nodes/1", 0, "up", *lease).status().code(),
            Code::kInvalidArgument);
}

TEST_F(EtcdStoreTest, AnExpiredLeaseDeletesItsKeys) {
  core::Result<core::LeaseId> lease = store_->GrantLease(1);  // etcd makes it 2 s
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  Put("/nodes/1", "up", *lease);
  auto deadline = Clock::now() + 10s;
  while (Has("/nodes/1") && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(Has("/nodes/1"));
  EXPECT_EQ(store_->KeepAlive(*lease).code(), Code::kInvalidArgument);
}

TEST_F(EtcdStoreTest, KeepAliveKeepsTheKeyPastItsTtl) {
  core::Result<core::LeaseId> lease = store_->GrantLease(1);  // etcd makes it 2 s
  ASSERT_TRUE(lease.ok()) << lease.status().message();
  Put("/nodes/1", "up", *lease);
  auto until = Clock::now() + 3500ms;
  while (Clock::now() < until) {
    ASSERT_TRUE(store_->KeepAlive(*lease).ok());
    std::this_thread::sleep_for(200ms);  // the refresh interval under test
  }
  EXPECT_TRUE(Has("/nodes/1"));
}

TEST_F(EtcdStoreTest, AWatchSeesPutsAndDeletesInOrderFromItsStartRevision) {
  Put("/w/old", "x");
  core::Result<core::KeyRange> range = store_->List("/w/");
  ASSERT_TRUE(range.ok()) << range.status().message();
  int64_t a = Put("/w/a", "1");
  int64_t b = Put("/w/b", "2");
  ASSERT_TRUE(store_->CompareAndDelete("/w/a", a).ok());
  Put("/x/elsewhere", "3");

  // From the List's revision + 1: the changes since, and only under /w/.
  core::Result<std::unique_ptr<core::Watch>> watch =
      store_->WatchPrefix("/w/", range->revision + 1);
  ASSERT_TRUE(watch.ok()) << watch.status().message();
  EXPECT_EQ(ReadEvents(**watch, 3),
            (std::vector<WatchEvent>{{WatchEvent::Type::kPut, {"/w/a", "1", a, 0}},
                                     {WatchEvent::Type::kPut, {"/w/b", "2", b, 0}},
                                     {WatchEvent::Type::kDelete, {"/w/a", "", b + 1, 0}}}));
  // Then the changes as they happen.
  int64_t c = Put("/w/c", "4");
  EXPECT_EQ(ReadEvents(**watch, 1),
            (std::vector<WatchEvent>{{WatchEvent::Type::kPut, {"/w/c", "4", c, 0}}}));
  core::Result<std::vector<WatchEvent>> nothing = (*watch)->Next(50ms);
  ASSERT_TRUE(nothing.ok()) << nothing.status().message();
  EXPECT_TRUE(nothing->empty());
}

TEST_F(EtcdStoreTest, AWatchFromACompactedRevisionIsOutOfRange) {
  int64_t revision = 0;
  for (int i = 0; i < 3; ++i) revision = Put("/w/a", std::to_string(i));
  Reply compacted =
      HttpConnection(etcd_.host_port())
          .Post("/v3/kv/compaction", "{\"revision\":\"" + std::to_string(revision) + "\"}");
  ASSERT_EQ(compacted.status, 200) << compacted.body;
  core::Result<std::unique_ptr<core::Watch>> watch = store_->WatchPrefix("/w/", 2);
  ASSERT_TRUE(watch.ok()) << watch.status().message();
  EXPECT_EQ(WatchFailure(**watch), Code::kOutOfRange);
}

TEST_F(EtcdStoreTest, AWatchFailsWhenEtcdStopsAndCallsFailUntilItIsBack) {
  int64_t revision = Put("/w/a", "1");
  core::Result<std::unique_ptr<core::Watch>> watch = store_->WatchPrefix("/w/", revision + 1);
  ASSERT_TRUE(watch.ok()) << watch.status().message();
  etcd_.Stop();
  EXPECT_EQ(WatchFailure(**watch), Code::kUnavailable);
  EXPECT_EQ((*watch)->Next(0ms).status().code(), Code::kUnavailable);  // it stays ended
  EXPECT_EQ(store_->Get("/w/a").status().code(), Code::kUnavailable);

  ASSERT_TRUE(etcd_.Restart());
  EXPECT_EQ(**store_->Get("/w/a"), (KeyValue{"/w/a", "1", revision, 0}));
}

TEST(EtcdStoreUnreachableTest, AnEndpointNobodyListensOnIsUnavailable) {
  std::unique_ptr<topo::EtcdStore> store = Open(HeldPort().url());
  EXPECT_EQ(store->Get("/t/a").status().code(), Code::kUnavailable);
  EXPECT_EQ(store->List("/t/").status().code(), Code::kUnavailable);
  EXPECT_EQ(store->CompareAndSet("/t/a", 0, "v").status().code(), Code::kUnavailable);
  EXPECT_EQ(store->GrantLease(5).status().code(), Code::kUnavailable);
  EXPECT_EQ(store->KeepAlive(1).code(), Code::kUnavailable);
  EXPECT_EQ(store->WatchPrefix("/t/", 0).status().code(), Code::kUnavailable);
}

TEST_F(EtcdStoreTest, CallsGoOnToTheNextEndpoint) {
  std::unique_ptr<topo::EtcdStore> store = Open(HeldPort().url() + ", " + etcd_.url());
  core::Result<core::CasResult> created = store->CompareAndSet("/t/a", 0, "v1");
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_TRUE(created->succeeded);
  EXPECT_TRUE(Has("/t/a"));
  core::Result<std::unique_ptr<core::Watch>> watch = store->WatchPrefix("/t/", 0);
  EXPECT_TRUE(watch.ok()) << watch.status().message();
  EXPECT_EQ(topo::OpenEtcdStore("http://127.0.0.1:2379,ftp://x", 1s).status().code(),
            Code::kInvalidArgument);
}

TEST_F(EtcdStoreTest, AfterAMemberThatNeverAnswersTheNextCallGoesToTheNextOne) {
  HeldPort hung;  // takes connections into its backlog, never answers
  std::unique_ptr<topo::EtcdStore> store = Open(hung.url() + "," + etcd_.url());
  core::Result<std::optional<KeyValue>> first = store->Get("/t/a");
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), Code::kTimeout);
  core::Result<core::CasResult> created = store->CompareAndSet("/t/a", 0, "v1");
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_TRUE(created->succeeded);
}

}  // namespace
}  // namespace shardctl::testing
