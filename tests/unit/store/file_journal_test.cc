#include "store/file_journal.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/record.h"

namespace shardctl::store {
namespace {

using core::Record;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void AppendToFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot append to " << path;
}

// The records in the journal file at `path`, which must start with the header
// and hold no torn tail.
std::vector<Record> RecordsIn(const std::string& path) {
  std::string data = ReadFile(path);
  EXPECT_TRUE(std::string_view(data).starts_with(kJournalHeader)) << path << " has no header";
  if (data.size() < kJournalHeader.size()) return {};
  core::Result<core::Scan> scan = core::ScanRecords(std::string_view(data).substr(8));
  EXPECT_TRUE(scan.ok()) << scan.status().message();
  if (!scan.ok()) return {};
  EXPECT_FALSE(scan->torn_tail) << path;
  EXPECT_EQ(scan->valid_bytes + kJournalHeader.size(), data.size()) << path;
  return scan->records;
}

Record Add(std::string name, int64_t amount) {
  return {Record::Kind::kAdd, std::move(name), 0, 0, amount};
}

std::unique_ptr<FileJournal> OpenOrDie(const std::string& path, size_t valid_bytes,
                                       FsyncPolicy policy) {
  core::Result<std::unique_ptr<FileJournal>> journal = FileJournal::Open(path, valid_bytes, policy);
  EXPECT_TRUE(journal.ok()) << journal.status().message();
  if (!journal.ok()) return nullptr;
  return std::move(*journal);
}

void AppendAndWait(FileJournal& journal, const Record& record) {
  core::Status written = journal.Wait(journal.Append(record));
  ASSERT_TRUE(written.ok()) << written.message();
}

class FileJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/shardctl-file-journal-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(std::string_view name) const { return dir_ + "/" + std::string(name); }

  std::string dir_;
};

// --- ParseFsyncPolicy ------------------------------------------------------

TEST(ParseFsyncPolicyTest, ParsesTheThreePolicies) {
  EXPECT_EQ(*ParseFsyncPolicy("always"), FsyncPolicy::kAlways);
  EXPECT_EQ(*ParseFsyncPolicy("everysec"), FsyncPolicy::kEverySecond);
  EXPECT_EQ(*ParseFsyncPolicy("no"), FsyncPolicy::kNo);
}

TEST(ParseFsyncPolicyTest, RefusesAnythingElseNamingTheChoices) {
  for (std::string_view bad : {"", "Always", "everysecond", "never", " no", "1"}) {
    core::Result<FsyncPolicy> policy = ParseFsyncPolicy(bad);
    ASSERT_FALSE(policy.ok()) << "'" << bad << "'";
    EXPECT_EQ(policy.status().code(), core::Code::kInvalidArgument);
    EXPECT_THAT(policy.status().message(), HasSubstr("always, everysec or no"));
  }
}

// --- Open --------------------------------------------------------------------

TEST_F(FileJournalTest, OpenCreatesAFileHoldingOnlyTheHeader) {
  std::unique_ptr<FileJournal> journal = OpenOrDie(Path("journal-1"), 0, FsyncPolicy::kAlways);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->bytes(), kJournalHeader.size());
  EXPECT_EQ(journal->policy(), FsyncPolicy::kAlways);
  EXPECT_EQ(ReadFile(Path("journal-1")), kJournalHeader);
}

TEST_F(FileJournalTest, OpenInADirectoryThatDoesNotExistFailsNamingThePath) {
  core::Result<std::unique_ptr<FileJournal>> journal =
      FileJournal::Open(Path("missing/journal-1"), 0, FsyncPolicy::kNo);
  ASSERT_FALSE(journal.ok());
  EXPECT_EQ(journal.status().code(), core::Code::kInternal);
  EXPECT_THAT(journal.status().message(), HasSubstr(Path("missing/journal-1")));
}

TEST_F(FileJournalTest, ReopenedAtItsSizeAppendsAfterWhatIsThere) {
  const std::string path = Path("journal-1");
  {
    std::unique_ptr<FileJournal> journal = OpenOrDie(path, 0, FsyncPolicy::kAlways);
    ASSERT_NE(journal, nullptr);
    AppendAndWait(*journal, Add("a", 1));
  }
  size_t size = std::filesystem::file_size(path);
  {
    std::unique_ptr<FileJournal> journal = OpenOrDie(path, size, FsyncPolicy::kAlways);
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->bytes(), size);
    AppendAndWait(*journal, Add("b", 2));
    EXPECT_EQ(journal->bytes(), std::filesystem::file_size(path));
  }
  EXPECT_EQ(RecordsIn(path), (std::vector<Record>{Add("a", 1), Add("b", 2)}));
}

TEST_F(FileJournalTest, OpenWithValidBytesCutsATornTail) {
  const std::string path = Path("journal-1");
  {
    std::unique_ptr<FileJournal> journal = OpenOrDie(path, 0, FsyncPolicy::kAlways);
    ASSERT_NE(journal, nullptr);
    AppendAndWait(*journal, Add("a", 1));
    AppendAndWait(*journal, Add("b", 2));
  }
  std::string torn;
  core::EncodeRecord(Add("torn", 3), &torn);
  AppendToFile(path, std::string_view(torn).substr(0, torn.size() - 5));

  std::string data = ReadFile(path);
  core::Result<core::Scan> scan = core::ScanRecords(std::string_view(data).substr(8));
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  ASSERT_TRUE(scan->torn_tail);
  size_t valid = kJournalHeader.size() + scan->valid_bytes;

  std::unique_ptr<FileJournal> journal = OpenOrDie(path, valid, FsyncPolicy::kAlways);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(std::filesystem::file_size(path), valid);
  EXPECT_EQ(journal->bytes(), valid);
  AppendAndWait(*journal, Add("c", 4));
  EXPECT_EQ(RecordsIn(path), (std::vector<Record>{Add("a", 1), Add("b", 2), Add("c", 4)}));
}

// --- Append and Wait ---------------------------------------------------------

TEST_F(FileJournalTest, AppendedRecordsAreInTheFileOnceWaitReturns) {
  for (FsyncPolicy policy : {FsyncPolicy::kAlways, FsyncPolicy::kEverySecond, FsyncPolicy::kNo}) {
    const std::string path = Path("journal-" + std::to_string(static_cast<int>(policy)));
    std::unique_ptr<FileJournal> journal = OpenOrDie(path, 0, policy);
    ASSERT_NE(journal, nullptr);
    Record windowed{Record::Kind::kRemove, "w", 60, 120, -5};
    AppendAndWait(*journal, Add("x", 1));
    AppendAndWait(*journal, windowed);
    // Without closing the journal: Wait means written.
    EXPECT_EQ(RecordsIn(path), (std::vector<Record>{Add("x", 1), windowed}));
    EXPECT_EQ(journal->bytes(), std::filesystem::file_size(path));
  }
}

TEST_F(FileJournalTest, RecordsAppendedTogetherShareOneWait) {
  std::unique_ptr<FileJournal> journal = OpenOrDie(Path("journal-1"), 0, FsyncPolicy::kAlways);
  ASSERT_NE(journal, nullptr);
  auto first = journal->Append(Add("a", 1));
  auto second = journal->Append(Add("b", 2));
  EXPECT_EQ(journal->bytes(), kJournalHeader.size());  // Append does no I/O
  ASSERT_TRUE(journal->Wait(second).ok());
  ASSERT_TRUE(journal->Wait(first).ok());
  EXPECT_EQ(RecordsIn(Path("journal-1")), (std::vector<Record>{Add("a", 1), Add("b", 2)}));
}

TEST_F(FileJournalTest, ClosingWritesRecordsNobodyWaitedFor) {
  const std::string path = Path("journal-1");
  {
    std::unique_ptr<FileJournal> journal = OpenOrDie(path, 0, FsyncPolicy::kNo);
    ASSERT_NE(journal, nullptr);
    journal->Append(Add("queued", 7));
  }
  EXPECT_EQ(RecordsIn(path), (std::vector<Record>{Add("queued", 7)}));
}

TEST_F(FileJournalTest, SyncSucceeds) {
  std::unique_ptr<FileJournal> journal = OpenOrDie(Path("journal-1"), 0, FsyncPolicy::kEverySecond);
  ASSERT_NE(journal, nullptr);
  AppendAndWait(*journal, Add("a", 1));
  core::Status synced = journal->Sync();
  EXPECT_TRUE(synced.ok()) << synced.message();
}

TEST_F(FileJournalTest, RecordsFromManyThreadsAllReachTheFileInEachThreadsOrder) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  for (FsyncPolicy policy : {FsyncPolicy::kAlways, FsyncPolicy::kEverySecond, FsyncPolicy::kNo}) {
    const std::string path = Path("journal-" + std::to_string(static_cast<int>(policy)));
    {
      std::unique_ptr<FileJournal> journal = OpenOrDie(path, 0, policy);
      ASSERT_NE(journal, nullptr);
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&journal, t] {
          for (int i = 0; i < kPerThread; ++i) {
            core::Status written =
                journal->Wait(journal->Append(Add("thread-" + std::to_string(t), i)));
            EXPECT_TRUE(written.ok()) << written.message();
          }
        });
      }
      if (policy == FsyncPolicy::kEverySecond) {
        for (int i = 0; i < 20; ++i) EXPECT_TRUE(journal->Sync().ok());
      }
      for (std::thread& thread : threads) thread.join();
      EXPECT_EQ(journal->bytes(), std::filesystem::file_size(path));
    }

    std::map<std::string, std::vector<int64_t>> amounts;
    for (const Record& record : RecordsIn(path)) amounts[record.name].push_back(record.amount);
    ASSERT_EQ(amounts.size(), static_cast<size_t>(kThreads))
        << "policy " << static_cast<int>(policy);
    std::vector<int64_t> expected(kPerThread);
    for (int i = 0; i < kPerThread; ++i) expected[i] = i;
    for (const auto& [name, got] : amounts) {
      EXPECT_EQ(got, expected) << name << ", policy " << static_cast<int>(policy);
    }
  }
}

// --- Rotate ------------------------------------------------------------------

TEST_F(FileJournalTest, RotateKeepsEverythingInTheOldFileAndContinuesInTheNew) {
  std::unique_ptr<FileJournal> journal = OpenOrDie(Path("journal-1"), 0, FsyncPolicy::kNo);
  ASSERT_NE(journal, nullptr);
  AppendAndWait(*journal, Add("a", 1));
  auto queued = journal->Append(Add("b", 2));  // queued, not yet written

  core::Status rotated = journal->Rotate(Path("journal-2"));
  ASSERT_TRUE(rotated.ok()) << rotated.message();
  EXPECT_TRUE(journal->Wait(queued).ok());
  EXPECT_EQ(journal->bytes(), kJournalHeader.size());
  AppendAndWait(*journal, Add("c", 3));
  AppendAndWait(*journal, Add("d", 4));

  EXPECT_EQ(RecordsIn(Path("journal-1")), (std::vector<Record>{Add("a", 1), Add("b", 2)}));
  EXPECT_EQ(RecordsIn(Path("journal-2")), (std::vector<Record>{Add("c", 3), Add("d", 4)}));
  EXPECT_EQ(journal->bytes(), std::filesystem::file_size(Path("journal-2")));
}

TEST_F(FileJournalTest, RotateToAnUncreatableFileFailsAndKeepsWritingTheOld) {
  std::unique_ptr<FileJournal> journal = OpenOrDie(Path("journal-1"), 0, FsyncPolicy::kAlways);
  ASSERT_NE(journal, nullptr);
  AppendAndWait(*journal, Add("a", 1));
  core::Status rotated = journal->Rotate(Path("missing/journal-2"));
  ASSERT_FALSE(rotated.ok());
  EXPECT_THAT(rotated.message(), HasSubstr(Path("missing/journal-2")));
  AppendAndWait(*journal, Add("b", 2));
  EXPECT_EQ(RecordsIn(Path("journal-1")), (std::vector<Record>{Add("a", 1), Add("b", 2)}));
}

// --- A failed write ----------------------------------------------------------

// Caps the size of files this process may write (as a full disk would) while
// alive; SIGXFSZ is ignored so that write() fails with EFBIG instead.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    previous_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &limit) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, previous_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  sighandler_t previous_;
  bool ok_ = false;
};

TEST_F(FileJournalTest, FailedWriteReturnsTheErrorLeavesTheFileAsItWasAndLaterWritesWork) {
  const std::string path = Path("journal-1");
  std::unique_ptr<FileJournal> journal = OpenOrDie(path, 0, FsyncPolicy::kAlways);
  ASSERT_NE(journal, nullptr);
  AppendAndWait(*journal, Add("a", 1));
  EXPECT_EQ(journal->failed_records(), 0u);
  const std::string before = ReadFile(path);
  {
    // Room for part of the next record only: the write is cut short.
    FileSizeLimit limit(before.size() + 10);
    ASSERT_TRUE(limit.ok());
    core::Status written = journal->Wait(journal->Append(Add("too-big", 2)));
    ASSERT_FALSE(written.ok());
    EXPECT_EQ(written.code(), core::Code::kInternal);
    EXPECT_THAT(written.message(), HasSubstr(path));
  }
  EXPECT_EQ(journal->failed_records(), 1u);  // counted for the shard's checkpoint
  EXPECT_EQ(ReadFile(path), before);
  EXPECT_EQ(journal->bytes(), before.size());
  AppendAndWait(*journal, Add("c", 3));
  EXPECT_EQ(RecordsIn(path), (std::vector<Record>{Add("a", 1), Add("c", 3)}));
}

}  // namespace
}  // namespace shardctl::store
