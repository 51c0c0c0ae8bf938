// Counts that survive: restarts, kill -9 in every fsync mode, and the
// refusals of the store (lock, corruption, unwritable directory, shard count,
// full disk).
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

std::string ReadBytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream bytes;
  bytes << file.rdbuf();
  return bytes.str();
}

class PersistenceTest : public ::testing::Test {
 protected:
  // Starts serve on free ports over data_ and returns the aggregator's address.
  std::unique_ptr<ServerProcess> Start(const std::vector<std::string>& extra = {},
                                       size_t max_file_bytes = 0) {
    std::vector<std::string> args = {"serve", "--port", "0", "--shard-base-port", "0",
                                     "--data-dir", data_.path()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = std::make_unique<ServerProcess>(args, max_file_bytes);
    auto listeners = process->WaitForListeners(4);
    EXPECT_EQ(listeners.size(), 4u) << process->Stderr();
    aggregator_ = listeners["aggregator"];
    return process;
  }

  TempDir data_;
  std::string aggregator_;
};

TEST_F(PersistenceTest, CountsSurviveACleanRestart) {
  auto serve = Start();
  {
    HttpConnection http(aggregator_);
    for (int value : {1, 2, 3, -10}) http.Post("/increment", "{\"value\":" + std::to_string(value) + "}");
    http.Post("/increment", R"({"value":7,"counter":"pageviews"})");
    http.Post("/increment", R"({"value":3,"counter":"gone"})");
    http.Post("/reset", R"({"counter":"gone"})");
    http.Post("/increment", R"({"value":4,"counter":"api:c1","window":600})");
  }
  serve->Signal(SIGTERM);
  ASSERT_EQ(serve->WaitForExit(5s), 0) << serve->Stderr();

  serve = Start();
  HttpConnection http(aggregator_);
  EXPECT_EQ(http.Get("/total").body, R"({"total":-4})");
  EXPECT_EQ(http.Get("/total?counter=pageviews").body, R"({"total":7,"counter":"pageviews"})");
  EXPECT_TRUE(http.Get("/total?counter=api:c1&window=600").body.starts_with(R"({"total":4,)"));
  EXPECT_EQ(http.Get("/counters").body,
            R"({"counters":[{"counter":"default","total":-4},{"counter":"pageviews","total":7}]})");
}

TEST_F(PersistenceTest, AcknowledgedIncrementsSurviveKill9InEveryFsyncMode) {
  int64_t expected = 0;
  for (const char* mode : {"always", "everysec", "no"}) {
    SCOPED_TRACE(mode);
    auto serve = Start({"--fsync", mode});
    HttpConnection http(aggregator_);
    for (int value = 1; value <= 50; ++value) {
      ASSERT_EQ(http.Post("/increment", "{\"value\":" + std::to_string(value) + "}").status, 200);
      expected += value;
    }
    serve->Signal(SIGKILL);
    ASSERT_TRUE(serve->WaitForExit(5s).has_value());

    serve = Start({"--fsync", mode});
    EXPECT_EQ(HttpConnection(aggregator_).Get("/total").body,
              "{\"total\":" + std::to_string(expected) + "}");
    serve->Signal(SIGKILL);
    ASSERT_TRUE(serve->WaitForExit(5s).has_value());
  }
}

TEST_F(PersistenceTest, SecondServeOnTheSameDataDirIsRefusedNamingTheHolder) {
  auto first = Start();
  ServerProcess second({"serve", "--port", "0", "--shard-base-port", "0", "--data-dir",
                        data_.path()});
  EXPECT_EQ(second.WaitForExit(10s), 5);
  EXPECT_NE(second.Stderr().find(data_.path() + "/shard-0"), std::string::npos)
      << second.Stderr();
  EXPECT_NE(second.Stderr().find("pid " + std::to_string(first->pid())), std::string::npos)
      << second.Stderr();
  // The first one still serves.
  EXPECT_EQ(HttpConnection(aggregator_).Get("/total").status, 200);
}

TEST_F(PersistenceTest, CorruptStoreIsRefusedAndLeftUntouched) {
  auto serve = Start();
  {
    HttpConnection http(aggregator_);
    for (int i = 0; i < 3; ++i) http.Post("/increment", R"({"value":3})");  // all to shard 0
  }
  serve->Signal(SIGTERM);
  ASSERT_EQ(serve->WaitForExit(5s), 0);

  std::string journal = data_.path() + "/shard-0/journal-1";
  std::string bytes = ReadBytes(journal);
  ASSERT_GT(bytes.size(), 40u);
  bytes[20] = static_cast<char>(bytes[20] ^ 0x5a);  // inside the first record
  std::ofstream(journal, std::ios::binary | std::ios::trunc) << bytes;

  ServerProcess restart({"serve", "--port", "0", "--shard-base-port", "0", "--data-dir",
                         data_.path()});
  EXPECT_EQ(restart.WaitForExit(10s), 5);
  EXPECT_NE(restart.Stderr().find("corrupt"), std::string::npos) << restart.Stderr();
  EXPECT_NE(restart.Stderr().find("shard-0"), std::string::npos) << restart.Stderr();
  EXPECT_EQ(ReadBytes(journal), bytes);
}

TEST_F(PersistenceTest, TornTailIsCutAndEverythingBeforeItKept) {
  auto serve = Start();
  {
    HttpConnection http(aggregator_);
    for (int i = 0; i < 4; ++i) http.Post("/increment", R"({"value":3})");
  }
  serve->Signal(SIGKILL);
  ASSERT_TRUE(serve->WaitForExit(5s).has_value());
  std::string journal = data_.path() + "/shard-0/journal-1";
  std::filesystem::resize_file(journal, std::filesystem::file_size(journal) - 5);

  serve = Start();
  EXPECT_EQ(HttpConnection(aggregator_).Get("/total").body, R"({"total":9})");
}

TEST_F(PersistenceTest, UnwritableDataDirIsAClearError) {
  std::string file = data_.path() + "/a-file";
  std::ofstream(file) << "not a directory";
  ServerProcess serve({"serve", "--port", "0", "--shard-base-port", "0", "--data-dir",
                       file + "/sub"});
  EXPECT_EQ(serve.WaitForExit(10s), 5);
  EXPECT_NE(serve.Stderr().find(file), std::string::npos) << serve.Stderr();
}

TEST_F(PersistenceTest, DifferentShardCountIsRefusedWithTheReason) {
  auto serve = Start();
  serve->Signal(SIGTERM);
  ASSERT_EQ(serve->WaitForExit(5s), 0);
  for (const char* shards : {"2", "4"}) {
    ServerProcess other({"serve", "--port", "0", "--shard-base-port", "0", "--data-dir",
                         data_.path(), "--shards", shards});
    EXPECT_EQ(other.WaitForExit(10s), 5) << shards;
    EXPECT_NE(other.Stderr().find("mod N"), std::string::npos) << other.Stderr();
  }
  EXPECT_FALSE(std::filesystem::exists(data_.path() + "/shard-3"));
}

TEST_F(PersistenceTest, FullDiskRefusesIncrementsChangesNothingAndKeepsServingReads) {
  auto serve = Start({}, /*max_file_bytes=*/2048);
  HttpConnection http(aggregator_);
  int64_t acknowledged = 0;
  int refused = 0;
  for (int i = 0; i < 200 && refused < 3; ++i) {
    Reply reply = http.Post("/increment", R"({"value":3})");
    if (reply.status == 200) {
      acknowledged += 3;
    } else {
      EXPECT_EQ(reply.status, 500) << reply.body;
      EXPECT_NE(reply.body.find("not applied"), std::string::npos) << reply.body;
      ++refused;
    }
  }
  ASSERT_EQ(refused, 3) << "the file size limit never took effect";
  EXPECT_EQ(http.Get("/total").body, "{\"total\":" + std::to_string(acknowledged) + "}");
  EXPECT_EQ(http.Get("/healthz").status, 200);

  serve->Signal(SIGKILL);
  ASSERT_TRUE(serve->WaitForExit(5s).has_value());
  serve = Start();
  EXPECT_EQ(HttpConnection(aggregator_).Get("/total").body,
            "{\"total\":" + std::to_string(acknowledged) + "}");
}

TEST_F(PersistenceTest, InMemoryWritesNothing) {
  auto serve = Start({"--in-memory"});
  HttpConnection(aggregator_).Post("/increment", R"({"value":3})");
  EXPECT_TRUE(std::filesystem::is_empty(data_.path()));
}

}  // namespace
}  // namespace shardctl::testing
