#include "store/shard_store.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

#include "core/record.h"
#include "core/shard.h"
#include "store/file_journal.h"

namespace shardctl::store {
namespace {

namespace fs = std::filesystem;
using core::CounterPart;
using core::CounterRef;
using core::Shard;
using ::testing::HasSubstr;

// A time that starts a window of 60 s.
constexpr int64_t kT0 = 1'699'999'200;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

void AppendToFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot append to " << path;
}

// Every regular file in `dir`, by name, with its bytes.
std::map<std::string, std::string> FilesIn(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      files[entry.path().filename().string()] = ReadFile(entry.path().string());
    }
  }
  return files;
}

std::vector<std::string> NamesIn(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& [name, bytes] : FilesIn(dir)) names.push_back(name);
  return names;
}

std::vector<CounterPart> Sorted(std::vector<CounterPart> parts) {
  std::sort(parts.begin(), parts.end(),
            [](const CounterPart& a, const CounterPart& b) { return a.name < b.name; });
  return parts;
}

// Everything a test can observe of a shard, for the counters below.
struct Observed {
  std::vector<CounterPart> plain;
  std::vector<int64_t> counts;
  size_t size;
  bool operator==(const Observed&) const = default;
};
void PrintTo(const Observed& observed, std::ostream* os) {
  *os << "{plain:";
  for (const CounterPart& part : observed.plain) *os << " " << part.name << "=" << part.count;
  *os << "; counts:";
  for (int64_t count : observed.counts) *os << " " << count;
  *os << "; size " << observed.size << "}";
}
const std::vector<CounterRef> kCounters = {{"a", 0},  {"b", 0},    {"c", 0},    {"a", 60},
                                           {"b", 60}, {"gone", 0}, {"gone", 60}};
Observed Observe(const Shard& shard) {
  Observed observed{Sorted(shard.List("")), {}, shard.size()};
  for (const CounterRef& counter : kCounters) observed.counts.push_back(shard.Count(counter).count);
  return observed;
}

void Increment(Shard& shard, int64_t value, CounterRef counter) {
  core::Result<core::IncrementReply> reply =
      shard.Increment(core::test::Request(value, std::move(counter)));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
}

// Changes of every kind: plain and windowed increments, a reset.
void Work(Shard& shard, int round) {
  Increment(shard, 5 + round, {"a", 0});
  Increment(shard, -3, {"b", 0});
  Increment(shard, 2, {"a", 60});
  Increment(shard, 1, {"b", 60});
  Increment(shard, 9, {"gone", 0});
  Increment(shard, 4, {"gone", 60});
  ASSERT_TRUE(shard.Reset("gone").ok());
  Increment(shard, round, {"c", 0});
}

class ShardStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shardctl-shard-store-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    tmp_ = pattern;
    data_dir_ = tmp_ + "/data";
  }
  void TearDown() override { fs::remove_all(tmp_); }

  StoreOptions Options(int id = 0, int count = 1) const {
    StoreOptions options;
    options.data_dir = data_dir_;
    options.shard_id = id;
    options.shard_count = count;
    options.fsync = FsyncPolicy::kAlways;
    return options;
  }
  std::string ShardDir(int id = 0) const { return data_dir_ + "/shard-" + std::to_string(id); }

  std::unique_ptr<ShardStore> OpenOrDie(const StoreOptions& options) {
    core::Result<std::unique_ptr<ShardStore>> store = ShardStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    if (!store.ok()) return nullptr;
    return std::move(*store);
  }

  Shard::NowFn Clock() {
    return [this] { return now_; };
  }

  // A new shard with what `store` recovered replayed into it.
  std::unique_ptr<Shard> Recover(ShardStore& store, int id = 0) {
    auto shard = std::make_unique<Shard>(id, Clock(), store.journal());
    for (const core::Record& record : store.recovered()) {
      core::Status replayed = shard->Replay(record);
      EXPECT_TRUE(replayed.ok()) << replayed.message();
    }
    return shard;
  }

  // A directory with a snapshot of one round of Work and a journal of a
  // second (journal-2).
  void WriteSnapshotAndJournal(const StoreOptions& options) {
    std::unique_ptr<ShardStore> store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
    ASSERT_TRUE(store->Compact(shard).ok());
    Work(shard, 1);
  }

  // The state of a shard that did `rounds` rounds of Work, in memory only.
  Observed Expected(int rounds) {
    Shard shard(0, Clock());
    for (int round = 0; round < rounds; ++round) Work(shard, round);
    return Observe(shard);
  }

  // Opens the store, checks that Open fails with `code` and a message holding
  // `needle`, and that no file in the shard's directory changed.
  void ExpectOpenRefused(const StoreOptions& options, core::Code code, std::string_view needle) {
    const std::map<std::string, std::string> before = FilesIn(ShardDir(options.shard_id));
    core::Result<std::unique_ptr<ShardStore>> store = ShardStore::Open(options);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), code) << store.status().message();
    EXPECT_THAT(store.status().message(), HasSubstr(needle));
    EXPECT_THAT(store.status().message(), HasSubstr(ShardDir(options.shard_id)));
    EXPECT_EQ(FilesIn(ShardDir(options.shard_id)), before);
  }

  std::string tmp_;
  std::string data_dir_;
  int64_t now_ = kT0;
};

// --- Open: a new directory and its lock --------------------------------------

TEST_F(ShardStoreTest, OpenOnANewDirectoryCreatesMetaLockAndAnEmptyJournal) {
  data_dir_ = tmp_ + "/not/yet/there";
  std::unique_ptr<ShardStore> store = OpenOrDie(Options(2, 3));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->dir(), ShardDir(2));
  EXPECT_TRUE(store->recovered().empty());
  EXPECT_EQ(NamesIn(ShardDir(2)), (std::vector<std::string>{"LOCK", "journal-1", "meta"}));
  EXPECT_EQ(ReadFile(ShardDir(2) + "/meta"), "shardctl store 5\nshard 2 of 3\n");
  EXPECT_EQ(ReadFile(ShardDir(2) + "/LOCK"), std::to_string(::getpid()) + "\n");
  EXPECT_EQ(ReadFile(ShardDir(2) + "/journal-1"), kJournalHeader);
  EXPECT_FALSE(store->NeedsCompaction());
}

TEST_F(ShardStoreTest, SecondOpenOfTheSameDirectoryIsUnavailableNamingThePid) {
  std::unique_ptr<ShardStore> first = OpenOrDie(Options());
  ASSERT_NE(first, nullptr);
  core::Result<std::unique_ptr<ShardStore>> second = ShardStore::Open(Options());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), core::Code::kUnavailable);
  const std::string pid = "(pid " + std::to_string(::getpid()) + ")";
  EXPECT_THAT(second.status().message(), HasSubstr(pid));
  EXPECT_THAT(second.status().message(), HasSubstr(ShardDir()));
  // The failed Open left the lock and the data of the first alone.
  EXPECT_EQ(ReadFile(ShardDir() + "/LOCK"), std::to_string(::getpid()) + "\n");

  first.reset();
  std::unique_ptr<ShardStore> third = OpenOrDie(Options());
  EXPECT_NE(third, nullptr);
}

TEST_F(ShardStoreTest, OtherShardsOfTheSameDataDirectoryOpenSideBySide) {
  std::unique_ptr<ShardStore> zero = OpenOrDie(Options(0, 2));
  std::unique_ptr<ShardStore> one = OpenOrDie(Options(1, 2));
  ASSERT_NE(zero, nullptr);
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(ReadFile(ShardDir(1) + "/meta"), "shardctl store 5\nshard 1 of 2\n");
}

TEST_F(ShardStoreTest, UnwritableDataDirectoryFailsNamingIt) {
  // Tests run as root, whom permissions do not stop: a regular file in the
  // path does.
  WriteFile(tmp_ + "/file", "not a directory");
  StoreOptions options = Options();
  options.data_dir = tmp_ + "/file/sub";
  core::Result<std::unique_ptr<ShardStore>> store = ShardStore::Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), core::Code::kInternal);
  EXPECT_THAT(store.status().message(), HasSubstr("cannot create the data directory"));
  EXPECT_THAT(store.status().message(), HasSubstr(tmp_ + "/file/sub"));
  EXPECT_THAT(store.status().message(), HasSubstr("Not a directory"));
}

// --- Recovery ----------------------------------------------------------------

TEST_F(ShardStoreTest, ReopenedStoreRecoversWhatTheShardJournaled) {
  for (FsyncPolicy policy : {FsyncPolicy::kAlways, FsyncPolicy::kEverySecond, FsyncPolicy::kNo}) {
    fs::remove_all(data_dir_);
    StoreOptions options = Options();
    options.fsync = policy;
    Observed before;
    {
      std::unique_ptr<ShardStore> store = OpenOrDie(options);
      ASSERT_NE(store, nullptr);
      Shard shard(0, Clock(), store->journal());
      Work(shard, 0);
      Work(shard, 1);
      before = Observe(shard);
    }
    EXPECT_EQ(before, Expected(2));

    std::unique_ptr<ShardStore> store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    EXPECT_FALSE(store->recovered().empty());
    std::unique_ptr<Shard> shard = Recover(*store);
    EXPECT_EQ(Observe(*shard), before) << "policy " << static_cast<int>(policy);
    store->ForgetRecovered();
    EXPECT_TRUE(store->recovered().empty());
  }
}

TEST_F(ShardStoreTest, RecoveryAcrossManyRestartsKeepsAppendingToTheJournal) {
  for (int round = 0; round < 4; ++round) {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    std::unique_ptr<Shard> shard = Recover(*store);
    EXPECT_EQ(Observe(*shard), Expected(round)) << "round " << round;
    Work(*shard, round);
  }
  std::unique_ptr<ShardStore> store = OpenOrDie(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Observe(*Recover(*store)), Expected(4));
  EXPECT_EQ(NamesIn(ShardDir()), (std::vector<std::string>{"LOCK", "journal-1", "meta"}));
}

TEST_F(ShardStoreTest, TornTailInTheJournalIsCutAndTheRestRecovered) {
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
  }
  const std::string journal = ShardDir() + "/journal-1";
  const size_t valid_size = fs::file_size(journal);
  std::string torn;
  core::EncodeRecord({core::Record::Kind::kAdd, "c", 0, 0, 1000}, &torn);
  AppendToFile(journal, std::string_view(torn).substr(0, torn.size() - 3));

  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(fs::file_size(journal), valid_size);
    std::unique_ptr<Shard> shard = Recover(*store);
    EXPECT_EQ(Observe(*shard), Expected(1));
    Work(*shard, 1);
  }
  std::unique_ptr<ShardStore> store = OpenOrDie(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Observe(*Recover(*store)), Expected(2));
}

TEST_F(ShardStoreTest, JournalCutShortWhileBeingCreatedIsStartedAgain) {
  { ASSERT_NE(OpenOrDie(Options()), nullptr); }
  WriteFile(ShardDir() + "/journal-1", kJournalHeader.substr(0, 3));
  std::unique_ptr<ShardStore> store = OpenOrDie(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->recovered().empty());
  EXPECT_EQ(ReadFile(ShardDir() + "/journal-1"), kJournalHeader);
}

// --- Compaction ----------------------------------------------------------------

TEST_F(ShardStoreTest, CompactThenReopenRecoversFromTheSnapshotAndTheNewJournal) {
  StoreOptions options = Options();
  options.compact_min_bytes = 100;
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
    EXPECT_TRUE(store->NeedsCompaction());
    core::Status compacted = store->Compact(shard);
    ASSERT_TRUE(compacted.ok()) << compacted.message();
    EXPECT_FALSE(store->NeedsCompaction());
    EXPECT_EQ(NamesIn(ShardDir()),
              (std::vector<std::string>{"LOCK", "journal-2", "meta", "snapshot"}));
    EXPECT_EQ(ReadFile(ShardDir() + "/journal-2"), kJournalHeader);
    Work(shard, 1);
  }
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    std::unique_ptr<Shard> shard = Recover(*store);
    EXPECT_EQ(Observe(*shard), Expected(2));
    // Compacting again starts generation 3 and deletes generation 2.
    ASSERT_TRUE(store->Compact(*shard).ok());
    EXPECT_EQ(NamesIn(ShardDir()),
              (std::vector<std::string>{"LOCK", "journal-3", "meta", "snapshot"}));
    Work(*shard, 2);
  }
  std::unique_ptr<ShardStore> store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Observe(*Recover(*store)), Expected(3));
}

TEST_F(ShardStoreTest, CompactOfAnEmptyShardRecoversNothing) {
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    ASSERT_TRUE(store->Compact(shard).ok());
  }
  std::unique_ptr<ShardStore> store = OpenOrDie(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->recovered().empty());
}

TEST_F(ShardStoreTest, LeftoversOfAFinishedCompactionAreRemovedOnOpen) {
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
    ASSERT_TRUE(store->Compact(shard).ok());
    Work(shard, 1);
  }
  // As a crash right after the snapshot's rename would leave them.
  WriteFile(ShardDir() + "/journal-1", "an old generation, never read again");
  WriteFile(ShardDir() + "/snapshot.tmp", "half a snapshot");
  std::unique_ptr<ShardStore> store = OpenOrDie(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Observe(*Recover(*store)), Expected(2));
  EXPECT_EQ(NamesIn(ShardDir()),
            (std::vector<std::string>{"LOCK", "journal-2", "meta", "snapshot"}));
}

TEST_F(ShardStoreTest, FailedCompactionLosesNothing) {
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
    // A directory where the snapshot's temporary file goes: its write fails
    // after the journal was rotated, as a full disk would make it.
    fs::create_directory(ShardDir() + "/snapshot.tmp");
    core::Status compacted = store->Compact(shard);
    ASSERT_FALSE(compacted.ok());
    EXPECT_THAT(compacted.message(), HasSubstr("snapshot.tmp"));
    Work(shard, 1);
  }
  fs::remove(ShardDir() + "/snapshot.tmp");
  std::unique_ptr<ShardStore> store = OpenOrDie(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Observe(*Recover(*store)), Expected(2));
}

TEST_F(ShardStoreTest, RepeatedFailedCompactionsLoseNothing) {
  // The maintenance loop retries compaction; while the disk stays full each
  // attempt fails. None may cost a change already acknowledged.
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    fs::create_directory(ShardDir() + "/snapshot.tmp");
    for (int round = 0; round < 3; ++round) {
      Work(shard, round);
      EXPECT_FALSE(store->Compact(shard).ok());
    }
    Work(shard, 3);
  }
  fs::remove(ShardDir() + "/snapshot.tmp");
  std::unique_ptr<ShardStore> store = OpenOrDie(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Observe(*Recover(*store)), Expected(4));
}

TEST_F(ShardStoreTest, FailedCompactionThenRestartThenFailedCompactionLosesNothing) {
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
    fs::create_directory(ShardDir() + "/snapshot.tmp");
    EXPECT_FALSE(store->Compact(shard).ok());
    Work(shard, 1);
  }
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    std::unique_ptr<Shard> shard = Recover(*store);
    EXPECT_EQ(Observe(*shard), Expected(2));
    Work(*shard, 2);
    EXPECT_FALSE(store->Compact(*shard).ok());
    Work(*shard, 3);
  }
  fs::remove(ShardDir() + "/snapshot.tmp");
  std::unique_ptr<ShardStore> store = OpenOrDie(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Observe(*Recover(*store)), Expected(4));
}

// --- Corruption and mismatches: refused, files left alone ---------------------

TEST_F(ShardStoreTest, CorruptByteInTheMiddleOfTheJournalIsRefused) {
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
    Work(shard, 1);
  }
  const std::string journal = ShardDir() + "/journal-1";
  const std::string good = ReadFile(journal);
  std::string one;
  core::EncodeRecord({core::Record::Kind::kAdd, "a", 0, 0, 5}, &one);  // the first record
  // The first record's CRC, its kind, its amount; a byte halfway through the file.
  for (size_t at : {size_t{12}, size_t{16}, size_t{20}, kJournalHeader.size() + one.size() + 20,
                    good.size() / 2}) {
    std::string bad = good;
    bad[at] ^= '\x55';
    WriteFile(journal, bad);
    SCOPED_TRACE("byte " + std::to_string(at));
    ExpectOpenRefused(Options(), core::Code::kInternal, "corrupt");
    EXPECT_EQ(ReadFile(journal), bad);
  }
}

TEST_F(ShardStoreTest, CorruptLengthOfARecordBeforeTheLastIsRefused) {
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
  }
  const std::string journal = ShardDir() + "/journal-1";
  const std::string good = ReadFile(journal);
  core::Result<core::Scan> scan = core::ScanRecords(std::string_view(good).substr(8));
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  ASSERT_GE(scan->records.size(), 2u);
  // The offset of the record before the last.
  size_t at = kJournalHeader.size();
  for (size_t i = 0; i + 2 < scan->records.size(); ++i) {
    std::string encoded;
    core::EncodeRecord(scan->records[i], &encoded);
    at += encoded.size();
  }
  // Its length grows past the end of the file: not a torn write (the last
  // record after it is whole), and cutting there would drop that record.
  std::string bad = good;
  bad[at] ^= '\x80';
  WriteFile(journal, bad);
  ExpectOpenRefused(Options(), core::Code::kInternal, "corrupt");
}

TEST_F(ShardStoreTest, JournalWithoutItsHeaderIsRefused) {
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
  }
  std::string data = ReadFile(ShardDir() + "/journal-1");
  data[0] = 'X';
  WriteFile(ShardDir() + "/journal-1", data);
  ExpectOpenRefused(Options(), core::Code::kInternal, "not a shardctl journal");
}

TEST_F(ShardStoreTest, CorruptSnapshotIsRefused) {
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
    ASSERT_TRUE(store->Compact(shard).ok());
    Work(shard, 1);
  }
  const std::string snapshot = ShardDir() + "/snapshot";
  const std::string good = ReadFile(snapshot);
  for (size_t at : {size_t{0}, size_t{9}, good.size() / 2, good.size() - 6, good.size() - 1}) {
    std::string bad = good;
    bad[at] ^= '\x01';
    WriteFile(snapshot, bad);
    SCOPED_TRACE("byte " + std::to_string(at));
    ExpectOpenRefused(Options(), core::Code::kInternal, "corrupt");
  }
  WriteFile(snapshot, std::string_view(good).substr(0, good.size() - 3));
  ExpectOpenRefused(Options(), core::Code::kInternal, "not a complete snapshot");

  WriteFile(snapshot, good);
  std::unique_ptr<ShardStore> store = OpenOrDie(Options());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Observe(*Recover(*store)), Expected(2));
}

// --- Idempotency keys and format 1 directories ----------------------------------

// Makes the snapshot say format `version`, with its checksum to match.
void SetSnapshotVersion(const std::string& path, uint32_t version) {
  std::string data = ReadFile(path);
  std::memcpy(data.data() + 4, &version, 4);
  uint32_t crc = core::Crc32c(std::string_view(data).substr(0, data.size() - 8));
  std::memcpy(data.data() + data.size() - 8, &crc, 4);
  WriteFile(path, data);
}

// Rewrites the snapshot as a format 1 to 3 shardctl wrote it: the same
// records, each encoded as the journal encodes it.
void WriteSnapshotAsOlderFormat(const std::string& path, uint32_t version) {
  constexpr size_t kHeader = 24, kTrailer = 8;
  std::string data = ReadFile(path);
  core::Result<std::vector<core::Record>> records =
      core::UnpackRecords(std::string_view(data).substr(kHeader, data.size() - kHeader - kTrailer));
  ASSERT_TRUE(records.ok()) << records.status().message();
  std::string old = data.substr(0, kHeader);
  for (const core::Record& record : *records) core::EncodeRecord(record, &old);
  old += data.substr(data.size() - kTrailer);
  WriteFile(path, old);
  SetSnapshotVersion(path, version);
}

core::IncrementRequest Keyed(std::string key, int64_t value, CounterRef counter) {
  return core::IncrementRequest{value, std::move(counter), std::move(key)};
}

TEST_F(ShardStoreTest, FormatOneDirectoryIsReadThenUpgradedWithoutTouchingItsJournal) {
  // A directory as shardctl wrote it before keys: format 1 meta, snapshot and
  // journal (records without keys are encoded as format 1 encoded them),
  // the journal ending in a torn record.
  StoreOptions options = Options();
  WriteSnapshotAndJournal(options);
  WriteFile(ShardDir() + "/meta", "shardctl store 1\nshard 0 of 1\n");
  WriteSnapshotAsOlderFormat(ShardDir() + "/snapshot", 1);
  std::string journal = ReadFile(ShardDir() + "/journal-2");
  journal.replace(0, kJournalHeader.size(), kJournalHeaderV1);
  WriteFile(ShardDir() + "/journal-2", journal);
  std::string torn;
  core::EncodeRecord({core::Record::Kind::kAdd, "c", 0, 0, 1000}, &torn);
  AppendToFile(ShardDir() + "/journal-2", torn.substr(0, torn.size() - 2));

  {
    std::unique_ptr<ShardStore> store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    std::unique_ptr<Shard> shard = Recover(*store);
    EXPECT_EQ(Observe(*shard), Expected(2));
    EXPECT_EQ(ReadFile(ShardDir() + "/meta"), "shardctl store 5\nshard 0 of 1\n");
    EXPECT_EQ(ReadFile(ShardDir() + "/journal-2"), journal);  // the torn tail cut, nothing else
    EXPECT_EQ(ReadFile(ShardDir() + "/journal-3"), kJournalHeader);
    ASSERT_TRUE(shard->Increment(Keyed("k1", 5, {"c", 0})).ok());
  }
  std::unique_ptr<ShardStore> store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  std::unique_ptr<Shard> shard = Recover(*store);
  EXPECT_EQ(shard->key_count(), 1u);
  EXPECT_EQ(shard->Count({"c", 0}).count, 1 + 5);
  EXPECT_EQ(NamesIn(ShardDir()),
            (std::vector<std::string>{"LOCK", "journal-2", "journal-3", "meta", "snapshot"}));
}

TEST_F(ShardStoreTest, SnapshotOfAnUnknownVersionIsRefused) {
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
    ASSERT_TRUE(store->Compact(shard).ok());
  }
  SetSnapshotVersion(ShardDir() + "/snapshot", 6);
  ExpectOpenRefused(Options(), core::Code::kInternal, "unknown format version 6");
}

TEST_F(ShardStoreTest, FormatTwoThreeAndFourDirectoriesAreReadAsTheyAreThenSayFive) {
  for (uint32_t version : {2u, 3u, 4u}) {
    SCOPED_TRACE(testing::Message() << "format " << version);
    StoreOptions options = Options();
    std::filesystem::remove_all(ShardDir());
    WriteSnapshotAndJournal(options);
    WriteFile(ShardDir() + "/meta", fmt::format("shardctl store {}\nshard 0 of 1\n", version));
    if (version < 4) {
      WriteSnapshotAsOlderFormat(ShardDir() + "/snapshot", version);
    } else {
      SetSnapshotVersion(ShardDir() + "/snapshot", version);  // packed already
    }
    const std::string journal = ReadFile(ShardDir() + "/journal-2");
    std::unique_ptr<ShardStore> store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    std::unique_ptr<Shard> shard = Recover(*store);
    EXPECT_EQ(Observe(*shard), Expected(2));
    EXPECT_EQ(ReadFile(ShardDir() + "/meta"), "shardctl store 5\nshard 0 of 1\n");
    EXPECT_EQ(ReadFile(ShardDir() + "/journal-2").substr(0, journal.size()), journal);
    // The next compaction writes a packed snapshot, read back the same.
    ASSERT_TRUE(store->Compact(*shard).ok());
    store.reset();
    store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(Observe(*Recover(*store)), Expected(2));
  }
}

TEST_F(ShardStoreTest, ASnapshotTakesAboutThirteenBytesACounterNamedLikeTheBenchmarks) {
  std::unique_ptr<ShardStore> store = OpenOrDie(Options());
  ASSERT_NE(store, nullptr);
  Shard shard(0, Clock(), store->journal());
  constexpr int kCounters = 10000;
  for (int i = 0; i < kCounters; ++i) {
    ASSERT_TRUE(
        shard.Increment(core::IncrementRequest{i % 1000 + 1, {fmt::format("c:{:07}", i), 0}}).ok());
  }
  ASSERT_TRUE(store->Compact(shard).ok());
  const uintmax_t bytes = std::filesystem::file_size(ShardDir() + "/snapshot");
  EXPECT_LT(bytes, 14u * kCounters) << bytes;  // 48 a counter as journal records
}

TEST_F(ShardStoreTest, AnyValueKeysSurviveASnapshot) {
  StoreOptions options = Options();
  core::Record any{.kind = core::Record::Kind::kAnyValueKey,
                   .name = "a",
                   .key = "k1",
                   .key_time = now_,
                   .count = 42};
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    ASSERT_TRUE(shard.Replay(any).ok());
    ASSERT_TRUE(store->Compact(shard).ok());
  }
  std::unique_ptr<ShardStore> store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->recovered(), ::testing::Contains(any));
  std::unique_ptr<Shard> shard = Recover(*store);
  core::Result<core::IncrementReply> retry = shard->Increment(Keyed("k1", 999, {"a", 0}));
  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(retry->count, 42);
  EXPECT_EQ(shard->Count({"a", 0}).count, 0);
}

TEST_F(ShardStoreTest, KeysSurviveCompactionAndRestartsWithinTheirWindow) {
  StoreOptions options = Options();
  options.compact_min_bytes = 100;
  core::IncrementReply first;
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    core::Result<core::IncrementReply> reply = shard.Increment(Keyed("k1", 5, {"a", 60}));
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    first = *reply;
    Work(shard, 0);
    ASSERT_TRUE(store->Compact(shard).ok());
    ASSERT_TRUE(shard.Increment(Keyed("k2", 7, {"b", 0})).ok());
  }
  now_ += 30;
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(options);
    ASSERT_NE(store, nullptr);
    std::unique_ptr<Shard> shard = Recover(*store);
    EXPECT_EQ(shard->key_count(), 2u);
    const int64_t before = shard->Count({"a", 60}).count;
    core::Result<core::IncrementReply> retry = shard->Increment(Keyed("k1", 5, {"a", 60}));
    ASSERT_TRUE(retry.ok()) << retry.status().message();
    EXPECT_EQ(*retry, first);
    EXPECT_EQ(shard->Count({"a", 60}).count, before);
    // Compacting again keeps both keys: one from the snapshot, one from the journal.
    ASSERT_TRUE(store->Compact(*shard).ok());
  }
  std::unique_ptr<ShardStore> store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Recover(*store)->key_count(), 2u);
}

TEST_F(ShardStoreTest, MissingMetaWithDataIsRefused) {
  {
    std::unique_ptr<ShardStore> store = OpenOrDie(Options());
    ASSERT_NE(store, nullptr);
    Shard shard(0, Clock(), store->journal());
    Work(shard, 0);
  }
  fs::remove(ShardDir() + "/meta");
  ExpectOpenRefused(Options(), core::Code::kInternal, "meta file is missing");
}

TEST_F(ShardStoreTest, DifferentShardCountIsInvalidArgumentNamingBothCounts) {
  { ASSERT_NE(OpenOrDie(Options(1, 4)), nullptr); }
  ExpectOpenRefused(Options(1, 3), core::Code::kInvalidArgument, "made with 4 shards, not 3");
  ExpectOpenRefused(Options(1, 3), core::Code::kInvalidArgument, "--shards 4");
  EXPECT_NE(OpenOrDie(Options(1, 4)), nullptr);
}

TEST_F(ShardStoreTest, MetaOfAnotherShardIdIsRefused) {
  { ASSERT_NE(OpenOrDie(Options(0, 2)), nullptr); }
  fs::rename(ShardDir(0), ShardDir(1));
  ExpectOpenRefused(Options(1, 2), core::Code::kInvalidArgument, "belongs to shard 0, not shard 1");
}

TEST_F(ShardStoreTest, MetaOfAnUnknownFormatIsRefused) {
  { ASSERT_NE(OpenOrDie(Options()), nullptr); }
  WriteFile(ShardDir() + "/meta", "shardctl store 6\nshard 0 of 1\n");
  ExpectOpenRefused(Options(), core::Code::kInternal, "not one this shardctl can read");
}

// --- CheckNoExtraShards --------------------------------------------------------

TEST_F(ShardStoreTest, CheckNoExtraShardsRefusesAShardBeyondTheCount) {
  for (int id = 0; id <= 3; ++id) fs::create_directories(ShardDir(id));
  core::Status status = CheckNoExtraShards(data_dir_, 3);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), core::Code::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("shard-3"));
  EXPECT_THAT(status.message(), HasSubstr(data_dir_));

  EXPECT_TRUE(CheckNoExtraShards(data_dir_, 4).ok());
  EXPECT_TRUE(CheckNoExtraShards(data_dir_, 5).ok());
}

TEST_F(ShardStoreTest, CheckNoExtraShardsIgnoresOtherNames) {
  fs::create_directories(ShardDir(0));
  fs::create_directories(data_dir_ + "/shard-x");
  fs::create_directories(data_dir_ + "/shards-9");
  fs::create_directories(data_dir_ + "/other");
  EXPECT_TRUE(CheckNoExtraShards(data_dir_, 1).ok());
}

TEST_F(ShardStoreTest, CheckNoExtraShardsOfADirectoryThatDoesNotExistIsOk) {
  EXPECT_TRUE(CheckNoExtraShards(tmp_ + "/nothing", 1).ok());
}

// --- DefaultDataDir --------------------------------------------------------------

// Sets or unsets an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) saved_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (saved_) {
      ::setenv(name_, saved_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> saved_;
};

TEST(DefaultDataDirTest, UsesAnAbsoluteXdgStateHome) {
  ScopedEnv state("XDG_STATE_HOME", "/var/state");
  ScopedEnv home("HOME", "/home/someone");
  EXPECT_EQ(DefaultDataDir(), "/var/state/shardctl");
}

TEST(DefaultDataDirTest, FallsBackToHomeWhenXdgStateHomeIsUnsetEmptyOrRelative) {
  ScopedEnv home("HOME", "/home/someone");
  for (const char* value : {static_cast<const char*>(nullptr), "", "relative/state"}) {
    ScopedEnv state("XDG_STATE_HOME", value);
    EXPECT_EQ(DefaultDataDir(), "/home/someone/.local/state/shardctl")
        << "XDG_STATE_HOME=" << (value ? value : "(unset)");
  }
}

}  // namespace
}  // namespace shardctl::store
