// HttpServer without sockets: bytes as one connection would send them, served
// by the real shard routes in process (HttpServer::ServeBytesForTesting).
#include "net/http_server.h"

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/shard.h"
#include "net/shard_server.h"

namespace shardctl::net {
namespace {

class HttpServerTest : public ::testing::Test {
 protected:
  explicit HttpServerTest(HttpServerOptions options = {}) : server_(std::move(options)) {
    RegisterShardRoutes(shard_, server_);
  }

  int64_t Count() { return shard_.Count({}).count; }

  core::Shard shard_{0};
  HttpServer server_;
};

std::string Post(const std::string& body, const std::string& extra_headers = "") {
  return "POST /increment HTTP/1.1\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST_F(HttpServerTest, ServesPipelinedRequestsInOrder) {
  std::string answers = server_.ServeBytesForTesting(
      Post(R"({"value":2})") + Post(R"({"value":3})") + "GET /count HTTP/1.1\r\n\r\n");
  EXPECT_NE(answers.find(R"({"success":true,"shardId":0,"count":2})"), std::string::npos);
  EXPECT_NE(answers.find(R"({"success":true,"shardId":0,"count":5})"), std::string::npos);
  EXPECT_TRUE(answers.ends_with(R"({"shardId":0,"count":5})")) << answers;
  EXPECT_EQ(Count(), 5);
}

TEST_F(HttpServerTest, AnswersAPipelinedExpectContinueAfterTheAnswerBeforeIt) {
  std::string answers = server_.ServeBytesForTesting(
      Post(R"({"value":2})") +
      "POST /increment HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n");
  size_t answer = answers.find("HTTP/1.1 200 ");
  size_t interim = answers.find("HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_NE(answer, std::string::npos) << answers;
  ASSERT_NE(interim, std::string::npos) << answers;
  EXPECT_LT(answer, interim) << answers;
}

TEST_F(HttpServerTest, AnHttp10ClientAskingForKeepAliveIsToldItMayKeepTheConnection) {
  std::string answer =
      server_.ServeBytesForTesting("GET /count HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_NE(answer.find("Connection: keep-alive\r\n"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("Connection: close"), std::string::npos) << answer;
}

TEST_F(HttpServerTest, CloseAnywhereInTheConnectionHeaderCloses) {
  std::string answer = server_.ServeBytesForTesting(
      "GET /count HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n" + Post(R"({"value":2})"));
  EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << answer;
  EXPECT_EQ(Count(), 0);  // the request after it is never read
}

TEST_F(HttpServerTest, HeadAnswersWithoutABody) {
  std::string answer = server_.ServeBytesForTesting("HEAD /count HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 ")) << answer;
  EXPECT_TRUE(answer.ends_with("\r\n\r\n")) << answer;
  EXPECT_NE(answer.find("Content-Length: 23\r\n"), std::string::npos) << answer;
}

TEST_F(HttpServerTest, PercentEncodedPathsAndHttp10CloseAreHonoured) {
  std::string answer = server_.ServeBytesForTesting("GET /c%6Funt HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 ")) << answer;
  EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << answer;
  answer = server_.ServeBytesForTesting("GET /count HTTP/1.1\r\nConnection: close\r\n\r\n" +
                                        Post(R"({"value":2})"));
  EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("count\":2"), std::string::npos) << answer;
  EXPECT_EQ(Count(), 0);
}

TEST_F(HttpServerTest, AHiddenContentLengthIsRefusedNotCountedAsAnEmptyBody) {
  // httplib alone ignores "Content-Length : 11" and counts an empty body as 1.
  for (const std::string& request :
       {std::string("POST /increment HTTP/1.1\r\nContent-Length : 11\r\n\r\n{\"value\":9}"),
        std::string("POST /increment HTTP/1.1\r\nX: a\r\n Content-Length: 11\r\n\r\n{\"value\":9}"),
        std::string("POST /increment HTTP/1.1\r\nContent-Length: 11\n\r\n{\"value\":9}")}) {
    std::string answer = server_.ServeBytesForTesting(request);
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 ")) << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  }
  EXPECT_EQ(Count(), 0);
}

TEST_F(HttpServerTest, StopsAtTheFirstRefusal) {
  std::string answers = server_.ServeBytesForTesting(
      "GET /count HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n" + Post(R"({"value":2})"));
  EXPECT_TRUE(answers.starts_with("HTTP/1.1 416 ")) << answers;
  EXPECT_EQ(answers.find("HTTP/1.1 200"), std::string::npos) << answers;
  EXPECT_EQ(Count(), 0);
}

TEST_F(HttpServerTest, OversizedBodyIs413) {
  std::string answer = server_.ServeBytesForTesting(Post(std::string(70 * 1024, ' ')));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413 ")) << answer;
  EXPECT_EQ(Count(), 0);
}

HttpServerOptions WithToken(std::string token) {
  HttpServerOptions options;
  options.bearer_token = std::move(token);
  return options;
}

class TokenServerTest : public HttpServerTest {
 protected:
  TokenServerTest() : HttpServerTest(WithToken("t0ken")) {}
};

TEST_F(TokenServerTest, NeedsTheTokenExceptForHealthz) {
  std::string refused = server_.ServeBytesForTesting(Post(R"({"value":2})"));
  EXPECT_TRUE(refused.starts_with("HTTP/1.1 401 ")) << refused;
  EXPECT_NE(refused.find("WWW-Authenticate: Bearer\r\n"), std::string::npos) << refused;
  EXPECT_TRUE(server_.ServeBytesForTesting(Post("{}", "Authorization: Bearer t0ke\r\n"))
                  .starts_with("HTTP/1.1 401 "));
  EXPECT_EQ(Count(), 0);

  EXPECT_TRUE(server_.ServeBytesForTesting(Post("{}", "Authorization: Bearer t0ken\r\n"))
                  .starts_with("HTTP/1.1 200 "));
  EXPECT_TRUE(
      server_.ServeBytesForTesting("GET /healthz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
  EXPECT_EQ(Count(), 1);
}

HttpServerOptions WithCors(std::vector<std::string> origins, std::string token = "") {
  HttpServerOptions options;
  options.cors_origins = std::move(origins);
  options.bearer_token = std::move(token);
  return options;
}

class CorsServerTest : public HttpServerTest {
 protected:
  CorsServerTest() : HttpServerTest(WithCors({"http://app.test:8080"}, "t0ken")) {}
};

std::string Preflight(const std::string& origin) {
  return "OPTIONS /increment HTTP/1.1\r\nOrigin: " + origin +
         "\r\nAccess-Control-Request-Method: POST\r\n"
         "Access-Control-Request-Headers: content-type, authorization\r\n\r\n";
}

TEST_F(CorsServerTest, APreflightFromAListedOriginIsAllowedWithoutAToken) {
  std::string answer = server_.ServeBytesForTesting(Preflight("http://app.test:8080"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 204 No Content\r\n")) << answer;
  EXPECT_NE(answer.find("Access-Control-Allow-Origin: http://app.test:8080\r\n"),
            std::string::npos)
      << answer;
  EXPECT_NE(answer.find("Access-Control-Allow-Methods: POST, OPTIONS\r\n"), std::string::npos)
      << answer;
  EXPECT_NE(answer.find("Access-Control-Allow-Headers: Content-Type, Authorization, "
                        "Idempotency-Key\r\n"),
            std::string::npos)
      << answer;
  EXPECT_NE(answer.find("Vary: Origin\r\n"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("Content-Length"), std::string::npos) << answer;  // 204: none
  EXPECT_EQ(Count(), 0);
}

TEST_F(CorsServerTest, APreflightFromAnotherOriginIsRefusedAndCountsNothing) {
  for (const char* origin : {"http://evil.test:8080", "http://app.test:8081", "null"}) {
    std::string answer = server_.ServeBytesForTesting(Preflight(origin));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 403 ")) << answer;
    EXPECT_EQ(answer.find("Access-Control-Allow-Origin"), std::string::npos) << answer;
    EXPECT_NE(answer.find("not a --cors-origin"), std::string::npos) << answer;
  }
  EXPECT_EQ(Count(), 0);
}

TEST_F(CorsServerTest, AnswersCarryTheOriginHeaderForAListedOriginOnly) {
  std::string allowed = server_.ServeBytesForTesting(
      Post(R"({"value":2})", "Origin: http://app.test:8080\r\nAuthorization: Bearer t0ken\r\n"));
  EXPECT_TRUE(allowed.starts_with("HTTP/1.1 200 ")) << allowed;
  EXPECT_NE(allowed.find("Access-Control-Allow-Origin: http://app.test:8080\r\n"),
            std::string::npos)
      << allowed;
  // An error too, so that the page can read why.
  std::string unauthorized =
      server_.ServeBytesForTesting(Post(R"({"value":2})", "Origin: http://app.test:8080\r\n"));
  EXPECT_TRUE(unauthorized.starts_with("HTTP/1.1 401 ")) << unauthorized;
  EXPECT_NE(unauthorized.find("Access-Control-Allow-Origin: http://app.test:8080\r\n"),
            std::string::npos)
      << unauthorized;

  std::string other = server_.ServeBytesForTesting(
      Post(R"({"value":2})", "Origin: http://evil.test\r\nAuthorization: Bearer t0ken\r\n"));
  EXPECT_TRUE(other.starts_with("HTTP/1.1 200 ")) << other;  // a non-browser may ask anything
  EXPECT_EQ(other.find("Access-Control-Allow-Origin"), std::string::npos) << other;
  EXPECT_EQ(Count(), 4);
}

TEST_F(HttpServerTest, WithoutCorsOriginsAPreflightIsRefusedSayingHowToAllowIt) {
  std::string answer = server_.ServeBytesForTesting(Preflight("http://app.test"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 403 ")) << answer;
  EXPECT_NE(answer.find("--cors-origin http://app.test"), std::string::npos) << answer;
}

TEST_F(HttpServerTest, PlainOptionsListsTheMethodsAndUnknownPathsAre404) {
  std::string answer = server_.ServeBytesForTesting("OPTIONS /count HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 204 ")) << answer;
  EXPECT_NE(answer.find("Allow: GET, OPTIONS\r\n"), std::string::npos) << answer;
  EXPECT_TRUE(server_.ServeBytesForTesting("OPTIONS /nope HTTP/1.1\r\n\r\n")
                  .starts_with("HTTP/1.1 404 "));
}

TEST(HttpServerContentTypeTest, AHandlerMayAnswerWithAnotherContentType) {
  HttpServer server;
  server.Handle("GET", "/page", [](const HttpRequest&) {
    return HttpResponse{200, "<p>hi</p>", "text/html; charset=utf-8"};
  });
  std::string answer = server.ServeBytesForTesting("GET /page HTTP/1.1\r\n\r\n");
  EXPECT_NE(answer.find("Content-Type: text/html; charset=utf-8\r\n"), std::string::npos)
      << answer;
  EXPECT_TRUE(answer.ends_with("<p>hi</p>")) << answer;
  EXPECT_NE(server.ServeBytesForTesting("GET /nope HTTP/1.1\r\n\r\n")
                .find("Content-Type: application/json\r\n"),
            std::string::npos);
}

}  // namespace
}  // namespace shardctl::net
