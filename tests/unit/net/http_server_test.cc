// HttpServer without sockets: bytes as one connection would send them, served
// by the real shard routes in process (HttpServer::ServeBytesForTesting).
#include "net/http_server.h"

#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/shard.h"
#include "net/shard_server.h"

namespace shardctl::net {
namespace {

using namespace std::string_literals;

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

// POST /increment with a body in the chunked coding: `chunks` as given.
std::string PostChunked(const std::string& chunks, const std::string& extra_headers = "") {
  return "POST /increment HTTP/1.1\r\n" + extra_headers + "Transfer-Encoding: chunked\r\n\r\n" +
         chunks;
}

// `body` in chunks of `size` bytes, then the last chunk.
std::string InChunks(const std::string& body, size_t size) {
  std::string chunks;
  for (size_t at = 0; at < body.size(); at += size) {
    std::string chunk = body.substr(at, size);
    chunks += fmt::format("{:x}\r\n{}\r\n", chunk.size(), chunk);
  }
  return chunks + "0\r\n\r\n";
}

TEST_F(HttpServerTest, DecodesAChunkedBodyWithExtensionsAndATrailerAndServesTheRequestsAfterIt) {
  std::string answers = server_.ServeBytesForTesting(
      PostChunked("4;name=value\r\n{\"va\r\n6\r\nlue\":2\r\n1;a;b=\"c;d\"\r\n}\r\n"
                  "0\r\nX-Checksum: 1\r\n\r\n") +
      PostChunked(InChunks(R"({"value":3})", 1), "Host: x\r\n") + Post(R"({"value":4})") +
      "GET /count HTTP/1.1\r\n\r\n");
  EXPECT_NE(answers.find(R"({"success":true,"shardId":0,"count":2})"), std::string::npos)
      << answers;
  EXPECT_NE(answers.find(R"({"success":true,"shardId":0,"count":5})"), std::string::npos)
      << answers;
  EXPECT_NE(answers.find(R"({"success":true,"shardId":0,"count":9})"), std::string::npos)
      << answers;
  EXPECT_TRUE(answers.ends_with(R"({"shardId":0,"count":9})")) << answers;
  EXPECT_EQ(answers.find("Connection: close"), std::string::npos) << answers;
  EXPECT_EQ(Count(), 9);
}

TEST_F(HttpServerTest, TransferEncodingChunkedIsReadInAnyCase) {
  std::string answer = server_.ServeBytesForTesting(
      "POST /increment HTTP/1.1\r\ntransfer-ENCODING:  Chunked \r\n\r\n" +
      InChunks(R"({"value":6})", 4));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 ")) << answer;
  EXPECT_EQ(Count(), 6);
}

TEST_F(HttpServerTest, AChunkedBodyAtTheLimitIsServedAndOneByteMoreIs413AndCloses) {
  std::string at_limit = R"({"value":1})";
  at_limit.resize(64 * 1024, ' ');
  std::string chunks = InChunks(at_limit, 4096);
  chunks.replace(chunks.size() - 2, 2, "X-Trailer: " + std::string(1000, 't') + "\r\n\r\n");
  std::string answer =
      server_.ServeBytesForTesting(PostChunked(chunks) + "GET /count HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 ")) << answer.substr(0, 300);
  EXPECT_TRUE(answer.ends_with(R"({"shardId":0,"count":1})")) << answer;
  EXPECT_EQ(Count(), 1);

  std::string over = at_limit + " ";
  answer = server_.ServeBytesForTesting(PostChunked(InChunks(over, 4096)) + Post(R"({"value":5})"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n")) << answer;
  EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("larger than 65536 bytes"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("HTTP/1.1 200"), std::string::npos) << answer;  // nothing after it
  // Announced in one chunk, and the data never sent.
  answer = server_.ServeBytesForTesting(PostChunked("10001\r\n" + over.substr(0, 100)));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413 ")) << answer;
  EXPECT_EQ(Count(), 1);
}

TEST_F(HttpServerTest, TooMuchChunkFramingIs413) {
  // Many tiny chunks: 4000 one-byte chunks spend 20000 bytes on framing.
  std::string tiny = "b\r\n{\"value\":1}\r\n";
  for (int i = 0; i < 4000; ++i) tiny += "1\r\n \r\n";
  std::string answer = server_.ServeBytesForTesting(PostChunked(tiny + "0\r\n\r\n"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413 ")) << answer;
  EXPECT_NE(answer.find("fewer, larger chunks"), std::string::npos) << answer;
  // Long extensions.
  std::string extended;
  for (int i = 0; i < 3; ++i) extended += "1;" + std::string(8000, 'e') + "\r\n \r\n";
  answer =
      server_.ServeBytesForTesting(PostChunked("b\r\n{\"value\":1}\r\n" + extended + "0\r\n\r\n"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413 ")) << answer;
  // A long trailer section.
  std::string trailers;
  for (int i = 0; i < 3; ++i) trailers += "X-T: " + std::string(8000, 't') + "\r\n";
  answer =
      server_.ServeBytesForTesting(PostChunked("b\r\n{\"value\":1}\r\n0\r\n" + trailers + "\r\n"));
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413 ")) << answer;
  EXPECT_EQ(Count(), 0);
}

TEST_F(HttpServerTest, OtherTransferCodingsAre501AndClose) {
  const std::string body = "b\r\n{\"value\":9}\r\n0\r\n\r\n";
  for (const std::string& codings :
       {std::string("Transfer-Encoding: gzip\r\n"), std::string("Transfer-Encoding: identity\r\n"),
        std::string("Transfer-Encoding: gzip, chunked\r\n"),
        std::string("Transfer-Encoding: chunked, gzip\r\n"),
        std::string("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")}) {
    std::string answer = server_.ServeBytesForTesting("POST /increment HTTP/1.1\r\n" + codings +
                                                      "\r\n" + body + Post(R"({"value":5})"));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 501 Not Implemented\r\n")) << codings << answer;
    EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << codings << answer;
    EXPECT_NE(answer.find(R"({"error":")"), std::string::npos) << codings << answer;
    EXPECT_EQ(answer.find("HTTP/1.1 200"), std::string::npos) << codings << answer;
  }
  EXPECT_EQ(Count(), 0);
}

TEST_F(HttpServerTest, TransferEncodingWithContentLengthIs400AndCloses) {
  // Either framing would count a value: the request-smuggling case.
  for (const char* request :
       {"POST /increment HTTP/1.1\r\nContent-Length: 11\r\nTransfer-Encoding: chunked\r\n\r\n"
        "b\r\n{\"value\":9}\r\n0\r\n\r\n",
        "POST /increment HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
        "b\r\n{\"value\":9}\r\n0\r\n\r\n"}) {
    std::string answer = server_.ServeBytesForTesting(request + Post(R"({"value":5})"));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 ")) << answer;
    EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << answer;
    EXPECT_NE(answer.find("both Transfer-Encoding and Content-Length"), std::string::npos)
        << answer;
    EXPECT_EQ(answer.find("HTTP/1.1 200"), std::string::npos) << answer;
  }
  EXPECT_EQ(Count(), 0);
}

TEST_F(HttpServerTest, AMalformedChunkIs400AndCloses) {
  const std::string value = "{\"value\":9}";
  const std::pair<const char*, std::string> cases[] = {
      {"not hex", "zz\r\n" + value + "\r\n0\r\n\r\n"},
      {"a 0x prefix", "0xb\r\n" + value + "\r\n0\r\n\r\n"},
      {"a sign", "+b\r\n" + value + "\r\n0\r\n\r\n"},
      {"a space before the size", " b\r\n" + value + "\r\n0\r\n\r\n"},
      {"no size", "\r\n" + value + "\r\n0\r\n\r\n"},
      {"a size that overflows", "10000000000000000b\r\n" + value + "\r\n0\r\n\r\n"},
      {"a size over 64 bits", "ffffffffffffffff\r\n" + value + "\r\n0\r\n\r\n"},
      {"data longer than its size", "a\r\n" + value + "\r\n0\r\n\r\n"},
      {"no CRLF after the data", "b\r\n" + value + "0\r\n\r\n"},
      {"a bare LF after the size", "b\n" + value + "\r\n0\r\n\r\n"},
      {"a bare LF after the data", "b\r\n" + value + "\n0\r\n\r\n"},
      {"a bare LF ending the trailer", "b\r\n" + value + "\r\n0\r\n\n"},
      {"a lone CR in an extension", "b;a\rb\r\n" + value + "\r\n0\r\n\r\n"},
      {"a NUL in a trailer", "b\r\n" + value + "\r\n0\r\n" + "X: \0\r\n\r\n"s},
  };
  for (const auto& [name, chunks] : cases) {
    std::string answer = server_.ServeBytesForTesting(PostChunked(chunks) + Post(R"({"value":5})"));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 ")) << name << ": " << answer;
    EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << name << ": " << answer;
    EXPECT_NE(answer.find("malformed chunked body"), std::string::npos) << name << ": " << answer;
    EXPECT_EQ(answer.find("HTTP/1.1 200"), std::string::npos) << name << ": " << answer;
  }
  EXPECT_EQ(Count(), 0);
}

TEST_F(HttpServerTest, TransferEncodingInHttp10Is400AndCloses) {
  std::string answer = server_.ServeBytesForTesting(
      "POST /increment HTTP/1.0\r\nTransfer-Encoding: "
      "chunked\r\n\r\nb\r\n{\"value\":9}\r\n0\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 ")) << answer;
  EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("HTTP/1.0"), std::string::npos) << answer;
  EXPECT_EQ(Count(), 0);
}

TEST_F(HttpServerTest, AChunkedBodyThatExpectsContinueGetsIt) {
  std::string answer = server_.ServeBytesForTesting(PostChunked("", "Expect: 100-continue\r\n"));
  EXPECT_EQ(answer, "HTTP/1.1 100 Continue\r\n\r\n");
  answer =
      server_.ServeBytesForTesting(PostChunked("b\r\n{\"value\":", "Expect: 100-continue\r\n"));
  EXPECT_EQ(answer, "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(Count(), 0);
}

TEST_F(HttpServerTest, AnUnfinishedChunkedBodyIsNotServed) {
  for (const std::string& chunks :
       {std::string("b\r\n{\"value\":9}\r\n"), std::string("b\r\n{\"value\":9}\r\n0\r\n"),
        std::string("b\r\n{\"value\":9}\r\n0\r\nX: y\r\n")}) {
    EXPECT_EQ(server_.ServeBytesForTesting(PostChunked(chunks)), "") << chunks;
  }
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

TEST(RouteLabelTest, NumberedSegmentsBecomeK) {
  EXPECT_EQ(RouteLabel("/shards/12/increment"), "/shards/{k}/increment");
  EXPECT_EQ(RouteLabel("/increment"), "/increment");
  EXPECT_EQ(RouteLabel("/"), "/");
  EXPECT_EQ(RouteLabel("/v2x/3"), "/v2x/{k}");
}

TEST(HttpServerMetricsTest, CountsAnswersByRouteAndStatus) {
  core::Registry registry;
  HttpServerOptions options;
  options.metrics = &registry;
  options.listener = "test";
  HttpServer server(options);
  core::Shard shard(0);
  RegisterShardRoutes(shard, server);
  ASSERT_TRUE(server.Listen("127.0.0.1", 0).ok());
  server.ServeBytesForTesting(Post(R"({"value":2})") + Post(R"({"value":"x"})") +
                              "GET /nope HTTP/1.1\r\n\r\n");
  std::string text = registry.Render();
  for (const char* line :
       {"shardctl_http_requests_total{listener=\"test\",route=\"/increment\",code=\"200\"} 1\n",
        "shardctl_http_requests_total{listener=\"test\",route=\"/increment\",code=\"400\"} 1\n",
        "shardctl_http_requests_total{listener=\"test\",route=\"other\",code=\"404\"} 1\n",
        "shardctl_http_request_duration_seconds_count{listener=\"test\",route=\"/increment\"} 2\n",
        "shardctl_http_connections_open{listener=\"test\"} 0\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << text;
  }
  server.Stop();
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
