// MemoryCoordStore: etcd's rules for revisions, compare-and-set, leases and
// watches, on a clock the tests move by hand.
#include "core/memory_coord_store.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

using namespace std::chrono_literals;
using Type = WatchEvent::Type;

// A store on a clock that only moves when the test says so.
struct Fixture {
  int64_t now_ms = 0;
  MemoryCoordStore store{[this] { return now_ms; }};

  int64_t Put(const std::string& key, const std::string& value, LeaseId lease = 0) {
    auto current = store.Get(key);
    int64_t expected = current.ok() && current->has_value() ? (*current)->mod_revision : 0;
    Result<CasResult> result = store.CompareAndSet(key, expected, value, lease);
    EXPECT_TRUE(result.ok() && result->succeeded) << key;
    return result.ok() ? result->revision : 0;
  }
  bool Has(const std::string& key) {
    auto kv = store.Get(key);
    return kv.ok() && kv->has_value();
  }
};

WatchEvent PutEvent(const std::string& key, const std::string& value, int64_t revision,
                    LeaseId lease = 0) {
  return {Type::kPut, KeyValue{key, value, revision, lease}};
}
WatchEvent DeleteEvent(const std::string& key, int64_t revision) {
  return {Type::kDelete, KeyValue{key, "", revision, 0}};
}

std::vector<WatchEvent> NextEvents(Watch& watch, std::chrono::milliseconds wait = 0ms) {
  Result<std::vector<WatchEvent>> events = watch.Next(wait);
  EXPECT_TRUE(events.ok()) << events.status().message();
  return events.ok() ? *events : std::vector<WatchEvent>{};
}

// Each case starts from "k" put at revision 1 and "other" at revision 2.
struct CasCase {
  const char* name;
  std::string key;
  int64_t expected_revision;
  CasResult result;
};

TEST(MemoryCoordStoreTest, CompareAndSetComparesTheModRevision) {
  const CasCase cases[] = {
      {"absent, expected absent: created at a new revision", "new", 0, {true, 3}},
      {"absent, expected a revision: refused, reports absent", "new", 1, {false, 0}},
      {"present, expected absent: refused, reports its revision", "k", 0, {false, 1}},
      {"present, another revision: refused", "k", 2, {false, 1}},
      {"present, its revision: set at a new revision", "k", 1, {true, 3}},
  };
  for (const CasCase& c : cases) {
    SCOPED_TRACE(c.name);
    Fixture f;
    f.Put("k", "v1");
    f.Put("other", "x");
    Result<CasResult> result = f.store.CompareAndSet(c.key, c.expected_revision, "v2");
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->succeeded, c.result.succeeded);
    EXPECT_EQ(result->revision, c.result.revision);
    EXPECT_EQ(f.store.revision(), c.result.succeeded ? 3 : 2);
    if (c.result.succeeded) {
      EXPECT_EQ(**f.store.Get(c.key), (KeyValue{c.key, "v2", 3, 0}));
    }
  }
}

TEST(MemoryCoordStoreTest, CompareAndDeleteComparesTheModRevision) {
  const CasCase cases[] = {
      {"absent, expected absent: nothing to do, the store's revision", "new", 0, {true, 2}},
      {"absent, expected a revision: refused, reports absent", "new", 1, {false, 0}},
      {"present, expected absent: refused, reports its revision", "k", 0, {false, 1}},
      {"present, another revision: refused", "k", 2, {false, 1}},
      {"present, its revision: deleted at a new revision", "k", 1, {true, 3}},
  };
  for (const CasCase& c : cases) {
    SCOPED_TRACE(c.name);
    Fixture f;
    f.Put("k", "v1");
    f.Put("other", "x");
    Result<CasResult> result = f.store.CompareAndDelete(c.key, c.expected_revision);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->succeeded, c.result.succeeded);
    EXPECT_EQ(result->revision, c.result.revision);
    EXPECT_EQ(f.Has("k"), !(c.key == "k" && c.result.succeeded));
  }
}

TEST(MemoryCoordStoreTest, OnlyChangesBumpTheStoreRevision) {
  Fixture f;
  EXPECT_EQ(f.Put("a", "1"), 1);
  EXPECT_EQ(f.Put("b", "1"), 2);
  EXPECT_EQ(f.Put("a", "2"), 3);
  ASSERT_TRUE(f.store.CompareAndSet("a", 1, "stale").ok());  // refused
  Result<LeaseId> lease = f.store.GrantLease(10);
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE(f.store.KeepAlive(*lease).ok());
  EXPECT_TRUE(f.store.RevokeLease(*lease).ok());  // it had no keys
  EXPECT_EQ(f.store.revision(), 3);
  EXPECT_EQ(**f.store.Get("a"), (KeyValue{"a", "2", 3, 0}));
  EXPECT_EQ(**f.store.Get("b"), (KeyValue{"b", "1", 2, 0}));
  EXPECT_FALSE(f.store.Get("c")->has_value());
}

TEST(MemoryCoordStoreTest, ListReturnsTheKeysUnderThePrefixInOrderWithTheRevision) {
  Fixture f;
  for (const char* key : {"/n/2", "/n/1", "/m/1", "/n", "/n/1/x"}) f.Put(key, "v");
  Result<KeyRange> range = f.store.List("/n/");
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->revision, 5);
  std::vector<std::string> keys;
  for (const KeyValue& kv : range->kvs) keys.push_back(kv.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"/n/1", "/n/1/x", "/n/2"}));
  EXPECT_EQ(f.store.List("")->kvs.size(), 5u);
  EXPECT_TRUE(f.store.List("/z")->kvs.empty());
}

TEST(MemoryCoordStoreTest, ALeaseKeepsItsKeysUntilItsTtlRunsOut) {
  Fixture f;
  LeaseId lease = *f.store.GrantLease(2);
  f.Put("node", "up", lease);
  EXPECT_EQ((*f.store.Get("node"))->lease, lease);
  f.now_ms = 1999;
  EXPECT_TRUE(f.Has("node"));
  f.now_ms = 2000;
  EXPECT_FALSE(f.Has("node"));
  EXPECT_EQ(f.store.revision(), 2);
  EXPECT_EQ(f.store.KeepAlive(lease).code(), Code::kInvalidArgument);
}

TEST(MemoryCoordStoreTest, KeepAliveStartsTheTtlAgain) {
  Fixture f;
  LeaseId lease = *f.store.GrantLease(2);
  f.Put("node", "up", lease);
  f.now_ms = 1500;
  ASSERT_TRUE(f.store.KeepAlive(lease).ok());
  f.now_ms = 3499;
  EXPECT_TRUE(f.Has("node"));
  f.now_ms = 3500;
  EXPECT_FALSE(f.Has("node"));
}

TEST(MemoryCoordStoreTest, RevokingALeaseDeletesAllItsKeysAtOneRevision) {
  Fixture f;
  LeaseId lease = *f.store.GrantLease(10);
  f.Put("/n/b", "1", lease);
  f.Put("/n/a", "1", lease);
  f.Put("/n/c", "1");
  std::unique_ptr<Watch> watch = *f.store.WatchPrefix("/n/", 4);
  ASSERT_TRUE(f.store.RevokeLease(lease).ok());
  EXPECT_EQ(NextEvents(*watch), (std::vector{DeleteEvent("/n/a", 4), DeleteEvent("/n/b", 4)}));
  EXPECT_TRUE(f.Has("/n/c"));
  EXPECT_EQ(f.store.RevokeLease(lease).code(), Code::kInvalidArgument);
}

TEST(MemoryCoordStoreTest, AKeySetWithoutItsLeaseLeavesTheLease) {
  Fixture f;
  LeaseId lease = *f.store.GrantLease(10);
  f.Put("k", "1", lease);
  f.Put("k", "2");
  ASSERT_TRUE(f.store.RevokeLease(lease).ok());
  EXPECT_EQ(**f.store.Get("k"), (KeyValue{"k", "2", 2, 0}));
}

TEST(MemoryCoordStoreTest, AKeyCannotBeAttachedToALeaseThatIsGone) {
  Fixture f;
  LeaseId lease = *f.store.GrantLease(1);
  f.now_ms = 1000;
  EXPECT_EQ(f.store.CompareAndSet("k", 0, "v", lease).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(f.store.CompareAndSet("k", 0, "v", 12345).status().code(), Code::kInvalidArgument);
  // A compare that fails is reported first, as etcd's txn does.
  f.Put("k", "v");
  Result<CasResult> refused = f.store.CompareAndSet("k", 0, "v", lease);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->succeeded);
  EXPECT_EQ(f.store.GrantLease(0).status().code(), Code::kInvalidArgument);
}

TEST(MemoryCoordStoreTest, AWatchReplaysItsPrefixFromItsStartRevision) {
  Fixture f;
  f.Put("/a/1", "x");                                     // 1
  f.Put("/b/1", "x");                                     // 2
  ASSERT_TRUE(f.store.CompareAndDelete("/a/1", 1).ok());  // 3
  f.Put("/a/2", "y");                                     // 4
  std::unique_ptr<Watch> from_two = *f.store.WatchPrefix("/a/", 2);
  EXPECT_EQ(NextEvents(*from_two), (std::vector{DeleteEvent("/a/1", 3), PutEvent("/a/2", "y", 4)}));
  EXPECT_TRUE(NextEvents(*from_two, 1ms).empty());
  f.Put("/a/2", "z");  // 5
  EXPECT_EQ(NextEvents(*from_two), (std::vector{PutEvent("/a/2", "z", 5)}));

  std::unique_ptr<Watch> from_one = *f.store.WatchPrefix("/a/", 1);
  EXPECT_EQ(NextEvents(*from_one).size(), 4u);
  std::unique_ptr<Watch> from_now = *f.store.WatchPrefix("/a/", 0);
  EXPECT_TRUE(NextEvents(*from_now).empty());
}

TEST(MemoryCoordStoreTest, AWatchFromAListsNextRevisionMissesNothing) {
  Fixture f;
  f.Put("/a/1", "x");
  KeyRange range = *f.store.List("/a/");
  f.Put("/a/2", "y");
  std::unique_ptr<Watch> watch = *f.store.WatchPrefix("/a/", range.revision + 1);
  EXPECT_EQ(NextEvents(*watch), (std::vector{PutEvent("/a/2", "y", 2)}));
}

TEST(MemoryCoordStoreTest, NextWaitsForAChange) {
  Fixture f;
  std::unique_ptr<Watch> watch = *f.store.WatchPrefix("/a/", 0);
  std::thread writer([&] { f.Put("/a/1", "x"); });
  EXPECT_EQ(NextEvents(*watch, 10s), (std::vector{PutEvent("/a/1", "x", 1)}));
  writer.join();
}

TEST(MemoryCoordStoreTest, ExpiredLeasesReachAWatchAsDeletions) {
  Fixture f;
  LeaseId lease = *f.store.GrantLease(1);
  f.Put("/nodes/1", "up", lease);
  std::unique_ptr<Watch> watch = *f.store.WatchPrefix("/nodes/", 2);
  f.now_ms = 1000;
  f.store.ExpireLeases();
  EXPECT_EQ(NextEvents(*watch), (std::vector{DeleteEvent("/nodes/1", 2)}));
}

TEST(MemoryCoordStoreTest, AnUnreachableStoreFailsEveryCallAndEndsItsWatches) {
  Fixture f;
  f.Put("k", "v");
  LeaseId lease = *f.store.GrantLease(10);
  std::unique_ptr<Watch> watch = *f.store.WatchPrefix("", 0);
  std::thread waiter([&] { EXPECT_EQ(watch->Next(10s).status().code(), Code::kUnavailable); });
  f.store.SetReachable(false);
  waiter.join();
  const std::pair<const char*, std::function<Status()>> calls[] = {
      {"Get", [&] { return f.store.Get("k").status(); }},
      {"List", [&] { return f.store.List("").status(); }},
      {"CompareAndSet", [&] { return f.store.CompareAndSet("k", 1, "w").status(); }},
      {"CompareAndDelete", [&] { return f.store.CompareAndDelete("k", 1).status(); }},
      {"GrantLease", [&] { return f.store.GrantLease(5).status(); }},
      {"KeepAlive", [&] { return f.store.KeepAlive(lease); }},
      {"RevokeLease", [&] { return f.store.RevokeLease(lease); }},
      {"WatchPrefix", [&] { return f.store.WatchPrefix("", 0).status(); }},
  };
  for (const auto& [name, call] : calls) EXPECT_EQ(call().code(), Code::kUnavailable) << name;

  f.store.SetReachable(true);
  EXPECT_TRUE(f.Has("k"));
  EXPECT_EQ(watch->Next(0ms).status().code(), Code::kUnavailable);  // stays ended
  std::unique_ptr<Watch> again = *f.store.WatchPrefix("", 1);
  EXPECT_EQ(NextEvents(*again).size(), 1u);
}

TEST(MemoryCoordStoreTest, AWatchFromACompactedRevisionIsOutOfRange) {
  Fixture f;
  for (int i = 1; i <= 3; ++i) f.Put("k", std::to_string(i));
  f.store.Compact(3);
  std::unique_ptr<Watch> too_old = *f.store.WatchPrefix("k", 2);
  EXPECT_EQ(too_old->Next(0ms).status().code(), Code::kOutOfRange);
  std::unique_ptr<Watch> kept = *f.store.WatchPrefix("k", 3);
  EXPECT_EQ(NextEvents(*kept), (std::vector{PutEvent("k", "3", 3)}));
}

}  // namespace
}  // namespace shardctl::core
