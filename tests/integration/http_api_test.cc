// The HTTP API of `shardctl serve`, driven over real HTTP: the original's
// answers, strict input handling, and errors that change nothing.
#include <cstdint>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.ready()); }

  std::string Total() { return http_.Get("/total").body; }

  Cluster cluster_;
  HttpConnection http_{cluster_.aggregator()};
};

TEST_F(HttpApiTest, OriginalCurlCallsGetOriginalAnswers) {
  Reply inc = http_.Post("/increment", R"({"value":1})");
  EXPECT_EQ(inc.status, 200);
  EXPECT_EQ(inc.body, R"({"success":true,"shardId":1,"count":1})");
  EXPECT_EQ(inc.content_type, "application/json");

  Reply total = http_.Get("/total");
  EXPECT_EQ(total.status, 200);
  EXPECT_EQ(total.body, R"({"total":1})");
  EXPECT_EQ(total.content_type, "application/json");
}

TEST_F(HttpApiTest, MissingValueMeansOne) {
  EXPECT_EQ(http_.Post("/increment", "{}").body, R"({"success":true,"shardId":1,"count":1})");
  EXPECT_EQ(http_.Post("/increment", "").body, R"({"success":true,"shardId":1,"count":2})");
  EXPECT_EQ(Total(), R"({"total":2})");
}

TEST_F(HttpApiTest, ZeroIsAnIncrementOfNothing) {
  EXPECT_EQ(http_.Post("/increment", R"({"value":0})").body,
            R"({"success":true,"shardId":0,"count":0})");
  EXPECT_EQ(Total(), R"({"total":0})");
}

TEST_F(HttpApiTest, NegativeValueDecrementsTheLastShard) {
  http_.Post("/increment", R"({"value":5})");  // shard 2
  EXPECT_EQ(http_.Post("/increment", R"({"value":-1})").body,
            R"({"success":true,"shardId":2,"count":4})");
  EXPECT_EQ(http_.Post("/increment", R"({"value":-3})").body,
            R"({"success":true,"shardId":0,"count":-3})");
  EXPECT_EQ(Total(), R"({"total":1})");
}

TEST_F(HttpApiTest, ExtremeValuesRouteAndCount) {
  EXPECT_EQ(http_.Post("/increment", R"({"value":9223372036854775807})").body,
            R"({"success":true,"shardId":1,"count":9223372036854775807})");
  EXPECT_EQ(http_.Post("/increment", R"({"value":-9223372036854775808})").body,
            R"({"success":true,"shardId":1,"count":-1})");
  EXPECT_EQ(Total(), R"({"total":-1})");
}

TEST_F(HttpApiTest, BadBodiesAre400AndChangeNothing) {
  http_.Post("/increment", R"({"value":7})");
  const std::vector<std::string> bad_bodies = {
      "not json",
      "{",
      "[1]",
      "5",
      "null",
      R"("5")",
      R"({"value":1.5})",
      R"({"value":"5"})",
      R"({"value":true})",
      R"({"value":null})",
      R"({"value":[1]})",
      R"({"value":{}})",
      R"({"value":1e3})",
      R"({"value":9223372036854775808})",
      R"({"value":-9223372036854775809})",
      R"({"value":99999999999999999999})",
      R"({"value":1,"extra":2})",
      R"({"valu":1})",
  };
  for (const std::string& body : bad_bodies) {
    Reply reply = http_.Post("/increment", body);
    EXPECT_EQ(reply.status, 400) << body;
    EXPECT_EQ(reply.content_type, "application/json") << body;
    EXPECT_NE(reply.body.find(R"("error":)"), std::string::npos) << body;
  }
  EXPECT_EQ(Total(), R"({"total":7})");
}

TEST_F(HttpApiTest, CountOverflowIsRefusedAndLeavesTheCount) {
  ASSERT_EQ(http_.Post("/increment", R"({"value":9223372036854775807})").status, 200);
  Reply overflow = http_.Post("/increment", R"({"value":1})");  // shard 1 again
  EXPECT_EQ(overflow.status, 422);
  EXPECT_NE(overflow.body.find("overflow"), std::string::npos) << overflow.body;
  HttpConnection shard1(cluster_.shard(1));
  EXPECT_EQ(shard1.Get("/count").body, R"({"shardId":1,"count":9223372036854775807})");
}

TEST_F(HttpApiTest, TotalOverflowIsAnErrorNotAWrappedNumber) {
  http_.Post("/increment", R"({"value":9223372036854775807})");  // shard 1
  http_.Post("/increment", R"({"value":2})");                    // shard 2
  Reply total = http_.Get("/total");
  EXPECT_EQ(total.status, 500);
  EXPECT_NE(total.body.find("does not fit"), std::string::npos) << total.body;
}

TEST_F(HttpApiTest, UnknownPathIs404AndWrongMethodIs405InJson) {
  Reply missing = http_.Get("/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.content_type, "application/json");
  EXPECT_EQ(missing.body, R"({"error":"no such path: /nope"})");

  Reply wrong = http_.Get("/increment");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.content_type, "application/json");
  EXPECT_NE(wrong.body.find("use POST"), std::string::npos) << wrong.body;
  EXPECT_EQ(http_.Post("/total", "{}").status, 405);
}

TEST_F(HttpApiTest, ShardsAnswerCountAndIncrementDirectly) {
  HttpConnection shard2(cluster_.shard(2));
  EXPECT_EQ(shard2.Post("/increment", R"({"value":5})").body,
            R"({"success":true,"shardId":2,"count":5})");
  EXPECT_EQ(shard2.Get("/count").body, R"({"shardId":2,"count":5})");
  EXPECT_EQ(shard2.Post("/increment", R"({"value":"x"})").status, 400);
  EXPECT_EQ(Total(), R"({"total":5})");
}

TEST_F(HttpApiTest, HealthzAnswersOk) {
  EXPECT_EQ(http_.Get("/healthz").body, R"({"status":"ok"})");
}

// RFC 9112 requires every HTTP/1.1 server to read the chunked coding:
// clients that cannot know the length in advance send it.
TEST_F(HttpApiTest, AChunkedBodyIsCountedAndTheRequestAfterItServed) {
  std::string answers = SendRaw(
      cluster_.aggregator(),
      "POST /increment HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\n{\"val\r\n6\r\nue\":9}\r\n0\r\nX-Trailer: t\r\n\r\n"
      "POST /increment HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nConnection: close\r\n\r\n"
      "{\"value\":1}");
  size_t first = answers.find(R"({"success":true,"shardId":0,"count":9})");
  size_t second = answers.find(R"({"success":true,"shardId":1,"count":1})");
  ASSERT_NE(first, std::string::npos) << answers;
  ASSERT_NE(second, std::string::npos) << answers;
  EXPECT_LT(first, second) << answers;
  EXPECT_EQ(Total(), R"({"total":10})");
}

// The guards against request smuggling and body bombs.
TEST_F(HttpApiTest, CompressedAndAmbiguousBodiesAreRefused) {
  const std::vector<std::tuple<std::string, std::string, int>> requests = {
      {"chunked with a length",
       "POST /increment HTTP/1.1\r\nHost: x\r\nContent-Length: 22\r\n"
       "Transfer-Encoding: chunked\r\n\r\nb\r\n{\"value\":9}\r\n0\r\n\r\n",
       400},
      {"malformed chunk",
       "POST /increment HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0xb\r\n{\"value\":9}\r\n0\r\n\r\n",
       400},
      {"chunked in HTTP/1.0",
       "POST /increment HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "b\r\n{\"value\":9}\r\n0\r\n\r\n",
       400},
      {"gzip transfer coding",
       "POST /increment HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
       "b\r\n{\"value\":9}\r\n0\r\n\r\n",
       501},
      {"gzip content coding",
       "POST /increment HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
       "Content-Length: 11\r\n\r\n{\"value\":9}",
       415},
      {"two lengths",
       "POST /increment HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
       "Content-Length: 11\r\n\r\n{\"value\":9}",
       400},
  };
  for (const auto& [name, request, status] : requests) {
    std::string answer = SendRaw(cluster_.aggregator(), request);
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 " + std::to_string(status) + " "))
        << name << ": " << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << name << ": " << answer;
    EXPECT_NE(answer.find(R"({"error":)"), std::string::npos) << name << ": " << answer;
  }
  EXPECT_EQ(Total(), R"({"total":0})");
}

TEST_F(HttpApiTest, OversizedBodyIs413) {
  std::string huge = R"({"value":1,"pad":")" + std::string(200 * 1024, 'x') + R"("})";
  Reply reply = http_.Post("/increment", huge);
  EXPECT_EQ(reply.status, 413);
  EXPECT_EQ(Total(), R"({"total":0})");
}

TEST_F(HttpApiTest, ConcurrentIncrementsAreAllCounted) {
  constexpr int kClients = 8;
  constexpr int kPerClient = 200;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([this, c] {
      HttpConnection http(cluster_.aggregator());
      for (int i = 0; i < kPerClient; ++i) {
        EXPECT_EQ(http.Post("/increment", "{\"value\":" + std::to_string(c + i) + "}").status, 200);
      }
    });
  }
  for (auto& client : clients) client.join();
  int64_t expected = 0;
  for (int c = 0; c < kClients; ++c) {
    for (int i = 0; i < kPerClient; ++i) expected += c + i;
  }
  EXPECT_EQ(Total(), "{\"total\":" + std::to_string(expected) + "}");
}

}  // namespace
}  // namespace shardctl::testing
