#include "store/reshard_storage.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

#include "core/shard.h"
#include "store/shard_store.h"

namespace shardctl::store {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ReshardStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shardctl-reshard-storage-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    tmp_ = pattern;
    a_ = tmp_ + "/a";
    b_ = tmp_ + "/b";
    fs::create_directories(a_);
    fs::create_directories(b_);
  }
  void TearDown() override { fs::remove_all(tmp_); }

  // Makes shard `shard` of `count` in `data_dir` holding `value` in the
  // default counter.
  static void MakeShard(const std::string& data_dir, int shard, int count, int64_t value) {
    core::Result<std::unique_ptr<ShardStore>> store = ShardStore::Open(
        {.data_dir = data_dir, .shard_id = shard, .shard_count = count,
         .fsync = FsyncPolicy::kAlways});
    ASSERT_TRUE(store.ok()) << store.status().message();
    core::Shard written(shard, nullptr, (*store)->journal());
    ASSERT_TRUE(written.Increment(core::test::Request(value)).ok());
  }

  static std::string Meta(const fs::path& dir) {
    std::ifstream file(dir / "meta");
    std::string version, shard;
    std::getline(file, version);
    std::getline(file, shard);
    return shard;
  }

  static std::vector<std::string> NamesIn(const std::string& dir) {
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  ReshardMarker Marker(int from, int to) const {
    return {.plan = {.from = from, .to = to, .node = "n1", .epoch = 4}, .data_dirs = {a_, b_}};
  }

  std::string tmp_, a_, b_;
};

TEST_F(ReshardStorageTest, TheMarkerRoundTripsInEveryDirectoryAndNamesTheCommandThatFinishes) {
  ASSERT_TRUE(WriteReshardMarker(Marker(3, 12)).ok());
  for (const std::string& dir : {a_, b_}) {
    core::Result<std::optional<ReshardMarker>> read = ReadReshardMarker(dir);
    ASSERT_TRUE(read.ok()) << read.status().message();
    ASSERT_TRUE(read->has_value());
    EXPECT_EQ(**read, Marker(3, 12));
    core::Status refused = CheckNoReshardUnderWay(dir, "http://e:2379");
    EXPECT_EQ(refused.code(), core::Code::kInvalidArgument);
    EXPECT_THAT(refused.message(),
                HasSubstr("finish it with: shardctl cluster reshard --etcd http://e:2379 "
                          "--shards 12 --node-id n1 --data-dir " + a_ + " --data-dir " + b_));
    // With https:// to etcd, the files the command needs come along.
    EXPECT_THAT(CheckNoReshardUnderWay(dir, "https://e:2379", " --cacert /ca.pem").message(),
                HasSubstr("--data-dir " + b_ + " --cacert /ca.pem"));
  }
  EXPECT_TRUE(CheckNoReshardUnderWay(tmp_, "").ok());
  std::ofstream(tmp_ + "/RESHARD") << "something else\n";
  EXPECT_EQ(ReadReshardMarker(tmp_).status().code(), core::Code::kInternal);
}

TEST_F(ReshardStorageTest, OldShardsAreFoundOnceEachAndAStagedCopyDoesNotCount) {
  MakeShard(a_, 0, 3, 5);
  MakeShard(b_, 1, 3, 7);
  MakeShard(b_, 2, 3, 11);
  MakeShard(a_, 1, 3, 100);  // a move's copy, never handed over
  std::ofstream(a_ + "/shard-1/staged") << "2\n";
  core::Result<std::vector<std::vector<core::Record>>> old =
      ReadOldShards({a_, b_}, 3, {true, true, true});
  ASSERT_TRUE(old.ok()) << old.status().message();
  ASSERT_EQ(old->size(), 3u);
  EXPECT_EQ((*old)[1], (std::vector<core::Record>{
                           {.kind = core::Record::Kind::kSet, .name = "default", .amount = 7}}));

  core::Result<std::vector<std::vector<core::Record>>> only_a =
      ReadOldShards({a_}, 3, {true, true, true});
  ASSERT_FALSE(only_a.ok());
  EXPECT_EQ(only_a.status().code(), core::Code::kInvalidArgument);
  EXPECT_THAT(only_a.status().message(), HasSubstr("shards 1, 2 are not in " + a_));
  // A shard nobody ever claimed may be absent: it is empty.
  EXPECT_TRUE(ReadOldShards({b_}, 3, {false, true, true}).ok());

  MakeShard(a_, 2, 3, 1);
  core::Result<std::vector<std::vector<core::Record>>> twice =
      ReadOldShards({a_, b_}, 3, {true, true, true});
  ASSERT_FALSE(twice.ok());
  EXPECT_THAT(twice.status().message(), HasSubstr("shard 2 is in both"));
  EXPECT_THAT(ReadOldShards({a_}, 2, {true, true}).status().message(),
              HasSubstr("the cluster has shards 0..1"));
}

TEST_F(ReshardStorageTest, TheSwapRetiresTheOldShardsAndCanBeRunAgainAfterACrashHalfWay) {
  MakeShard(a_, 0, 2, 5);
  MakeShard(b_, 1, 2, 7);
  const ReshardMarker marker = Marker(2, 3);
  ASSERT_TRUE(WriteReshardMarker(marker).ok());
  std::vector<std::vector<core::Record>> shards = {
      {{.kind = core::Record::Kind::kSet, .name = "default", .amount = 5}},
      {{.kind = core::Record::Kind::kSet, .name = "default", .amount = 7}},
      {}};
  ASSERT_TRUE(StageNewShards(a_, shards).ok());
  ASSERT_TRUE(StagingComplete(a_));

  // A crash half-way: old shard 0 set aside and new shard 0 moved in.
  fs::create_directories(a_ + "/retired");
  fs::rename(a_ + "/shard-0", a_ + "/retired/shard-0.crashed");
  fs::rename(a_ + "/reshard-staging/shard-0", a_ + "/shard-0");

  core::Result<std::vector<std::string>> retired = SwapInNewShards(marker);
  ASSERT_TRUE(retired.ok()) << retired.status().message();
  ASSERT_EQ(retired->size(), 1u);  // old shard 1, from b
  EXPECT_THAT((*retired)[0], HasSubstr(b_ + "/retired/shard-1.resharded-2-to-3-"));
  EXPECT_EQ(NamesIn(a_), (std::vector<std::string>{"retired", "shard-0", "shard-1", "shard-2"}));
  EXPECT_EQ(NamesIn(b_), (std::vector<std::string>{"retired"}));
  for (int shard = 0; shard < 3; ++shard) {
    EXPECT_EQ(Meta(a_ + "/shard-" + std::to_string(shard)),
              "shard " + std::to_string(shard) + " of 3");
  }
  core::Result<std::unique_ptr<ShardStore>> one =
      ShardStore::Open({.data_dir = a_, .shard_id = 1, .shard_count = 3});
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_THAT((*one)->recovered(),
              ::testing::Contains(core::Record{
                  .kind = core::Record::Kind::kSet, .name = "default", .amount = 7}));
  one->reset();

  // Once more, as a rerun after a crash at the very end: nothing to do.
  core::Result<std::vector<std::string>> again = SwapInNewShards(marker);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(NamesIn(a_), (std::vector<std::string>{"retired", "shard-0", "shard-1", "shard-2"}));
}

}  // namespace
}  // namespace shardctl::store
