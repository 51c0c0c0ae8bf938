#include "store/node_storage.h"

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

#include "store/shard_store.h"

namespace shardctl::store {
namespace {

namespace fs = std::filesystem;

class NodeStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shardctl-node-storage-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    tmp_ = pattern;
  }
  void TearDown() override { fs::remove_all(tmp_); }

  NodeStorage Storage() const {
    return NodeStorage({.data_dir = tmp_ + "/data", .shard_count = 8,
                        .fsync = FsyncPolicy::kAlways, .key_window_seconds = 0});
  }
  std::vector<core::ShardStorage::Found> Scan(NodeStorage& storage) {
    core::Result<std::vector<core::ShardStorage::Found>> found = storage.Scan();
    EXPECT_TRUE(found.ok()) << found.status().message();
    return found.ok() ? *found : std::vector<core::ShardStorage::Found>();
  }

  std::string tmp_;
};

TEST_F(NodeStorageTest, AStagedCopyIsFoundAsStagedUntilMarkedActiveAndKeepsItsCounts) {
  NodeStorage storage = Storage();
  {
    core::Result<std::unique_ptr<core::KeptShard>> staged = storage.Create(3, 5);
    ASSERT_TRUE(staged.ok()) << staged.status().message();
    ASSERT_TRUE((*staged)->shard().Increment(core::test::Request(4)).ok());
    std::vector<core::ShardStorage::Found> found = Scan(storage);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].shard, 3);
    EXPECT_EQ(found[0].staged_from, 5);
    ASSERT_TRUE((*staged)->MarkActive().ok());
  }
  std::vector<core::ShardStorage::Found> found = Scan(storage);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_FALSE(found[0].staged_from.has_value());
  core::Result<std::unique_ptr<core::KeptShard>> reopened = storage.Open(3);
  ASSERT_TRUE(reopened.ok()) << reopened.status().message();
  EXPECT_EQ((*reopened)->shard().Count(core::CounterRef()).count, 4);
}

TEST_F(NodeStorageTest, ARetiredShardIsSetAsideAtOnceAndItsPlaceIsFreeForANewCopy) {
  NodeStorage storage = Storage();
  core::Result<std::unique_ptr<core::KeptShard>> old = storage.Create(2, std::nullopt);
  ASSERT_TRUE(old.ok());
  ASSERT_TRUE((*old)->shard().Increment(core::test::Request(7)).ok());
  (*old)->Retire();
  EXPECT_TRUE(Scan(storage).empty());
  // A copy coming back while the retired one is still open: neither
  // disturbs the other, and the retired data is kept, not deleted.
  core::Result<std::unique_ptr<core::KeptShard>> fresh = storage.Create(2, 9);
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  old->reset();
  std::vector<core::ShardStorage::Found> found = Scan(storage);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].staged_from, 9);
  size_t retired = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(tmp_ + "/data/retired")) {
    retired += entry.path().filename().string().starts_with("shard-2.") ? 1 : 0;
  }
  EXPECT_EQ(retired, 1u);
}

TEST_F(NodeStorageTest, AShardMadeForAnotherShardCountIsRefusedInTheClustersWords) {
  {
    core::Result<std::unique_ptr<ShardStore>> old = ShardStore::Open(
        {.data_dir = tmp_ + "/data", .shard_id = 0, .shard_count = 3});
    ASSERT_TRUE(old.ok()) << old.status().message();
  }
  NodeStorage storage = Storage();  // a cluster of 8 shards
  core::Result<std::unique_ptr<core::KeptShard>> opened = storage.Open(0);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), core::Code::kInvalidArgument);
  EXPECT_NE(opened.status().message().find(
                "was made for a cluster of 3 shards, but the cluster in etcd has 8"),
            std::string::npos)
      << opened.status().message();
  EXPECT_NE(opened.status().message().find("shardctl cluster reshard"), std::string::npos);
}

}  // namespace
}  // namespace shardctl::store
