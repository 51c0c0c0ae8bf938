// `shardctl serve` against hostile clients: idle and half-sent connections
// that try to starve the workers, and a barrage of malformed requests that
// must change no count and leave the server serving.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A TCP connection to "host:port" that the test holds open; -1 if it failed.
class OpenSocket {
 public:
  explicit OpenSocket(const std::string& host_port) : fd_(ConnectTo(host_port)) {}
  ~OpenSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  OpenSocket(OpenSocket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  OpenSocket(const OpenSocket&) = delete;
  OpenSocket& operator=(const OpenSocket&) = delete;

  bool ok() const { return fd_ >= 0; }
  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Says "no more from me" (a half-close), as a client piping a file would.
  void FinishSending() { ::shutdown(fd_, SHUT_WR); }
  // Everything the server sends until it closes the connection or `timeout`
  // passes.
  std::string ReadAll(std::chrono::milliseconds timeout) { return ReadUntilClosed(fd_, timeout); }

 private:
  int fd_ = -1;
};

// A string literal's bytes, NULs included.
template <size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// 200 connections that send nothing or half a request must not keep another
// client waiting: each would hold a worker thread in a thread-per-connection
// server (64 by default), and the real client would queue behind them.
TEST(IdleConnectionsTest, TwoHundredIdleConnectionsDoNotStarveAClient) {
  Cluster cluster({"--in-memory"});
  ASSERT_TRUE(cluster.ready());
  constexpr int kIdle = 200;
  std::vector<OpenSocket> idle;
  for (int i = 0; i < kIdle; ++i) {
    idle.emplace_back(cluster.aggregator());
    ASSERT_TRUE(idle.back().ok()) << "connection " << i;
    // Half of them start a request and never finish it (slow loris).
    if (i % 2 == 1) {
      ASSERT_TRUE(idle.back().Send("POST /increment HTTP/1.1\r\nHost: x\r\n"));
    }
  }

  Clock::time_point start = Clock::now();
  RunResult inc = cluster.Run({"inc", "5"});
  double inc_seconds = SecondsSince(start);
  EXPECT_EQ(inc.exit_code, 0) << inc.err;
  EXPECT_EQ(inc.out, "shard 2: count 5\n");

  start = Clock::now();
  RunResult total = cluster.Run({"total"});
  double total_seconds = SecondsSince(start);
  EXPECT_EQ(total.exit_code, 0) << total.err;
  EXPECT_EQ(total.out, "5\n");

  std::printf("with %d idle connections held open: shardctl inc took %.3f s, total %.3f s\n", kIdle,
              inc_seconds, total_seconds);
  EXPECT_LT(inc_seconds, 2.0);
  EXPECT_LT(total_seconds, 2.0);
}

// curl sends "Expect: 100-continue" with larger bodies and waits (about 1 s)
// for "100 Continue" before it sends the body: the server answers the header
// at once, before the body is in.
TEST(ExpectContinueTest, HeaderWithExpectGets100ContinueBeforeTheBody) {
  Cluster cluster;
  ASSERT_TRUE(cluster.ready());
  OpenSocket client(cluster.aggregator());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.Send("POST /increment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: 11\r\nExpect: 100-continue\r\n\r\n"));
  std::string interim = client.ReadAll(500ms);
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(client.Send(R"({"value":7})"));
  std::string answer = client.ReadAll(500ms);
  EXPECT_NE(answer.find("HTTP/1.1 200"), std::string::npos) << answer;
  EXPECT_NE(answer.find(R"({"success":true,"shardId":1,"count":7})"), std::string::npos) << answer;
}

TEST(SlowRequestTest, AHalfSentRequestGets408AndIsClosed) {
  Cluster cluster({"--in-memory"});
  ASSERT_TRUE(cluster.ready());
  OpenSocket slow(cluster.aggregator());
  ASSERT_TRUE(slow.Send("POST /increment HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"val"));
  Clock::time_point start = Clock::now();
  std::string answer = slow.ReadAll(10s);  // returns when the server closes
  double seconds = SecondsSince(start);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 408")) << answer;
  EXPECT_NE(answer.find(R"({"error":)"), std::string::npos) << answer;
  EXPECT_GT(seconds, 4.0);  // the request deadline is 5 s from its first byte
  EXPECT_LT(seconds, 7.0);
  EXPECT_EQ(HttpConnection(cluster.aggregator()).Get("/total").body, R"({"total":0})");
}

TEST(LimitsTest, OversizedHeaderIs431AndChangesNothing) {
  Cluster cluster({"--in-memory"});
  ASSERT_TRUE(cluster.ready());
  std::string request = "POST /increment HTTP/1.1\r\nX-Pad: " + std::string(20 * 1024, 'a') +
                        "\r\nContent-Length: 11\r\n\r\n{\"value\":1}";
  std::string answer = SendRaw(cluster.aggregator(), request);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 431")) << answer.substr(0, 200);
  EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  EXPECT_NE(answer.find(R"({"error":)"), std::string::npos) << answer;
  EXPECT_EQ(HttpConnection(cluster.aggregator()).Get("/total").body, R"({"total":0})");
}

// What the barrage sends on one connection.
struct Malformed {
  std::string name;
  std::string bytes;
};

std::string Post(const std::string& path, const std::string& body,
                 const std::string& extra_headers = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// POST `path` with `body` in the chunked coding, in chunks of up to `size` bytes.
std::string PostChunked(const std::string& path, const std::string& body, size_t size = 1000) {
  std::string request =
      "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t at = 0; at < body.size(); at += size) {
    std::string chunk = body.substr(at, size);
    char line[32];
    std::snprintf(line, sizeof(line), "%zx\r\n", chunk.size());
    request += line + chunk + "\r\n";
  }
  return request + "0\r\n\r\n";
}

// POST /increment with `chunks` as they are after a chunked header.
std::string Chunks(const std::string& chunks, const std::string& extra_headers = "") {
  return "POST /increment HTTP/1.1\r\nHost: x\r\n" + extra_headers +
         "Transfer-Encoding: chunked\r\n\r\n" + chunks;
}

std::string Get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
}

// Bodies that no POST /increment may count.
std::vector<std::string> BadIncrementBodies() {
  std::vector<std::string> bodies = {
      "not json",
      "{",
      "}",
      "[1]",
      "5",
      "null",
      "true",
      R"("5")",
      "{}{}",
      R"({"value":1}x)",
      R"({"value":1.5})",
      R"({"value":"5"})",
      R"({"value":true})",
      R"({"value":null})",
      R"({"value":[1]})",
      R"({"value":{}})",
      R"({"value":1e3})",
      R"({"value":0.0})",
      R"({"value":-0.0})",
      R"({"value":1e400})",
      R"({"value":-1e400})",
      R"({"value":NaN})",
      R"({"value":Infinity})",
      R"({"value":0x10})",
      R"({"value":+5})",
      R"({"value":05})",
      R"({"value":9223372036854775808})",
      R"({"value":-9223372036854775809})",
      R"({"value":18446744073709551616})",
      R"({"value":99999999999999999999999999999})",
      "{\"value\":" + std::string(5000, '9') + "}",
      R"({"value":1,"extra":2})",
      R"({"valu":1})",
      R"({"value":1,"counter":""})",
      R"({"value":1,"counter":"a b"})",
      R"({"value":1,"counter":"a@b"})",
      R"({"value":1,"counter":"caf\u00e9"})",
      R"({"value":1,"counter":"a\u0000b"})",
      R"({"value":1,"counter":"..\\etc"})",
      "{\"value\":1,\"counter\":\"" + std::string(201, 'a') + "\"}",
      R"({"value":1,"counter":5})",
      R"({"value":1,"counter":null})",
      R"({"value":1,"counter":["a"]})",
      R"({"value":1,"window":0})",
      R"({"value":1,"window":-60})",
      R"({"value":1,"window":604801})",
      R"({"value":1,"window":1.5})",
      R"({"value":1,"window":"60"})",
      R"({"value":1,"window":9223372036854775807})",
      "{\"value\":1,\"counter\":\"\xff\"}",
      "\xff\xfe{}",
      Bytes("{\"value\":1\0}"),
      std::string(60000, '['),
      std::string(30000, '[') + std::string(30000, ']'),
      "{\"value\":\"" + std::string(60000, 'x') + "\"}",
  };
  std::string nested;
  for (int i = 0; i < 5000; ++i) nested += R"({"a":)";
  bodies.push_back(nested + "1" + std::string(5000, '}'));
  return bodies;
}

std::vector<Malformed> Barrage(bool aggregator) {
  std::vector<Malformed> barrage;
  for (const std::string& body : BadIncrementBodies()) {
    barrage.push_back({"increment body " + body.substr(0, 40), Post("/increment", body)});
    barrage.push_back(
        {"chunked increment body " + body.substr(0, 40), PostChunked("/increment", body, 7)});
  }
  for (const std::string& body :
       {std::string("{}"), std::string("not json"), std::string(R"({"counter":5})"),
        std::string(R"({"counter":""})"), std::string(R"({"counter":"a","extra":1})"),
        std::string(R"(["default"])"), std::string(R"({"counter":"a b"})"), std::string("")}) {
    barrage.push_back({"reset body " + body, Post("/reset", body)});
  }
  const std::vector<std::string> bad_queries =
      aggregator ? std::vector<std::string>{"/total?counter=a%20b",
                                            "/total?counter=",
                                            "/total?counter=" + std::string(300, 'a'),
                                            "/total?window=abc",
                                            "/total?window=0",
                                            "/total?window=-5",
                                            "/total?window=99999999999999999999",
                                            "/total?perShard=maybe",
                                            "/counters?limit=0",
                                            "/counters?limit=10001",
                                            "/counters?top=abc",
                                            "/counters?top=5&limit=5",
                                            "/counters?prefix=a%40b",
                                            "/counters?after=a%20b",
                                            "/total?counter=%ff"}
                 : std::vector<std::string>{
                       "/count?counter=a%20b", "/count?counter=",    "/count?window=abc",
                       "/count?window=0",      "/count?counter=%ff", "/count?window=1.5"};
  for (const std::string& target : bad_queries) barrage.push_back({"query " + target, Get(target)});

  const std::string body = R"({"value":9})";
  const std::vector<Malformed> raw = {
      // Chunked framing that is not quite the chunked coding, each around a
      // body that would count.
      {"chunk size not hex", Chunks("zb\r\n" + body + "\r\n0\r\n\r\n")},
      {"chunk size with 0x", Chunks("0xb\r\n" + body + "\r\n0\r\n\r\n")},
      {"chunk size with a sign", Chunks("+b\r\n" + body + "\r\n0\r\n\r\n")},
      {"chunk size after a space", Chunks(" b\r\n" + body + "\r\n0\r\n\r\n")},
      {"chunk size that overflows", Chunks("1000000000000000b\r\n" + body + "\r\n0\r\n\r\n")},
      {"chunk size of 2^64 - 1", Chunks("ffffffffffffffff\r\n" + body + "\r\n0\r\n\r\n")},
      {"chunk size too small", Chunks("a\r\n" + body + "\r\n0\r\n\r\n")},
      {"chunk size too large", Chunks("c\r\n" + body + "\r\n0\r\n\r\n")},
      {"no chunk size", Chunks("\r\n" + body + "\r\n0\r\n\r\n")},
      {"no CRLF after chunk data", Chunks("b\r\n" + body + "0\r\n\r\n")},
      {"bare LF after chunk size", Chunks("b\n" + body + "\r\n0\r\n\r\n")},
      {"bare LF after chunk data", Chunks("b\r\n" + body + "\n0\r\n\r\n")},
      {"bare LF ending the trailer", Chunks("b\r\n" + body + "\r\n0\r\n\n")},
      {"bare CR in a chunk extension", Chunks("b;a\rb\r\n" + body + "\r\n0\r\n\r\n")},
      {"NUL in a chunk extension", Chunks(Bytes("b;a\0\r\n") + body + "\r\n0\r\n\r\n")},
      {"NUL in a trailer", Chunks("b\r\n" + body + "\r\n0\r\n" + Bytes("X: \0\r\n\r\n"))},
      {"chunk extension over 8 KiB",
       Chunks("b;" + std::string(9000, 'e') + "\r\n" + body + "\r\n0\r\n\r\n")},
      {"chunked body never ended, then EOF", Chunks("b\r\n" + body + "\r\n")},
      {"chunked trailer never ended, then EOF", Chunks("b\r\n" + body + "\r\n0\r\nX: y\r\n")},
      // Two framings at once: what request smuggling rides on.
      {"chunked with a length",
       "POST /increment HTTP/1.1\r\nContent-Length: 11\r\n"
       "Transfer-Encoding: chunked\r\n\r\n" +
           body},
      {"CL.TE smuggling a second request",
       "POST /increment HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
           Post("/increment", body)},
      {"TE.CL smuggling a second request",
       "POST /increment HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
       "Content-Length: 4\r\n\r\n" +
           [&] {
             std::string smuggled = Post("/increment", body);
             char size[32];
             std::snprintf(size, sizeof(size), "%zx\r\n", smuggled.size());
             return size + smuggled + "\r\n0\r\n\r\n";
           }()},
      {"chunked with an empty length",
       Chunks("b\r\n" + body + "\r\n0\r\n\r\n", "Content-Length:\r\n")},
      {"chunked in HTTP/1.0",
       "POST /increment HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n" + body +
           "\r\n0\r\n\r\n"},
      // Transfer codings other than chunked alone (501).
      {"gzip transfer coding",
       "POST /increment HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n" + body},
      {"identity transfer coding",
       "POST /increment HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n" + body},
      {"gzip, chunked",
       "POST /increment HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\nb\r\n" + body +
           "\r\n0\r\n\r\n"},
      {"chunked, gzip",
       "POST /increment HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\nb\r\n" + body +
           "\r\n0\r\n\r\n"},
      {"xchunked", "POST /increment HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\nb\r\n" + body +
                       "\r\n0\r\n\r\n"},
      {"two Transfer-Encoding lines",
       Chunks("b\r\n" + body + "\r\n0\r\n\r\n", "Transfer-Encoding: chunked\r\n")},
      {"gzip line, then chunked line",
       Chunks("b\r\n" + body + "\r\n0\r\n\r\n", "Transfer-Encoding: gzip\r\n")},
      {"empty Transfer-Encoding",
       "POST /increment HTTP/1.1\r\nTransfer-Encoding:\r\n\r\nb\r\n" + body + "\r\n0\r\n\r\n"},
      {"Transfer-Encoding with a space before the colon",
       "POST /increment HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\nb\r\n" + body +
           "\r\n0\r\n\r\n"},
      {"Transfer-Encoding folded",
       "POST /increment HTTP/1.1\r\nX: a\r\n Transfer-Encoding: chunked\r\n\r\nb\r\n" + body +
           "\r\n0\r\n\r\n"},
      {"Transfer-Encoding with a vertical tab",
       "POST /increment HTTP/1.1\r\nTransfer-Encoding: \vchunked\r\n\r\nb\r\n" + body +
           "\r\n0\r\n\r\n"},
      // Chunked bodies too large, decoded or encoded.
      {"chunked body over 64 KiB",
       PostChunked("/increment", "{\"value\":1,\"p\":\"" + std::string(70 * 1024, 'x') + "\"}",
                   4096)},
      {"chunk announcing 1 MiB", Chunks("100000\r\n" + body)},
      {"many tiny chunks",
       [&] {
         std::string chunks = "b\r\n" + body + "\r\n";
         for (int i = 0; i < 5000; ++i) chunks += "1\r\n \r\n";
         return Chunks(chunks + "0\r\n\r\n");
       }()},
      {"long chunk extensions",
       [&] {
         std::string chunks = "b\r\n" + body + "\r\n";
         for (int i = 0; i < 4; ++i) chunks += "1;" + std::string(8000, 'e') + "\r\n \r\n";
         return Chunks(chunks + "0\r\n\r\n");
       }()},
      {"long trailer section",
       [&] {
         std::string trailers;
         for (int i = 0; i < 4; ++i) trailers += "X-T: " + std::string(8000, 't') + "\r\n";
         return Chunks("b\r\n" + body + "\r\n0\r\n" + trailers + "\r\n");
       }()},
      {"chunked, expecting 100-continue, with a bad body",
       Chunks("4\r\nnope\r\n0\r\n\r\n", "Expect: 100-continue\r\n")},
      {"gzip body", Post("/increment", body, "Content-Encoding: gzip\r\n")},
      {"br body", Post("/increment", body, "Content-Encoding: br\r\n")},
      {"two lengths",
       "POST /increment HTTP/1.1\r\nContent-Length: 11\r\nContent-Length: 11"
       "\r\n\r\n" +
           body},
      {"two different lengths",
       "POST /increment HTTP/1.1\r\nContent-Length: 11\r\n"
       "Content-Length: 5\r\n\r\n" +
           body},
      {"negative length", "POST /increment HTTP/1.1\r\nContent-Length: -11\r\n\r\n" + body},
      {"hex length", "POST /increment HTTP/1.1\r\nContent-Length: 0xb\r\n\r\n" + body},
      {"length with junk", "POST /increment HTTP/1.1\r\nContent-Length: 11abc\r\n\r\n" + body},
      {"escaped length", "POST /increment HTTP/1.1\r\nContent-Length: %311\r\n\r\n" + body},
      {"huge length", "POST /increment HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n"},
      {"length over the cap", "POST /increment HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n"},
      {"body over 64 KiB",
       Post("/increment", "{\"value\":1,\"p\":\"" + std::string(70 * 1024, 'x') + "\"}")},
      {"header over 16 KiB",
       "GET /total HTTP/1.1\r\nX: " + std::string(17 * 1024, 'x') + "\r\n\r\n"},
      {"many headers",
       [] {
         std::string request = "GET /total HTTP/1.1\r\n";
         for (int i = 0; i < 3000; ++i) request += "A: b\r\n";
         return request + "\r\n";
       }()},
      {"URI over 8 KiB", Get("/total?counter=" + std::string(9000, 'a'))},
      {"header line over 8 KiB",
       "GET /total HTTP/1.1\r\nX: " + std::string(9000, 'x') + "\r\n\r\n"},
      {"garbage request line", "HELLO WORLD\r\n\r\n"},
      {"binary request line", Bytes("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")},
      {"TLS hello", Bytes("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")},
      {"request line only", "GET\r\n\r\n"},
      {"no version", "GET /total\r\n\r\n"},
      {"HTTP/0.9", "GET /total\r\n"},
      {"bad version", "GET /total HTTP/9.9\r\n\r\n"},
      {"bad version text", "GET /total FTP/1.1\r\n\r\n"},
      {"empty lines", "\r\n\r\n\r\n\r\n"},
      {"LF only", "POST /increment HTTP/1.1\nContent-Length: 11\n\n" + body},
      {"NUL in path", Bytes("GET /to\0tal HTTP/1.1\r\n\r\n")},
      {"NUL in header", Bytes("POST /increment HTTP/1.1\r\nX: a\0b\r\nContent-Length: 11\r\n\r\n"
                              "{\"value\":9}")},
      {"header without colon", "GET /total HTTP/1.1\r\nNoColonHere\r\n\r\n"},
      {"header with space before colon",
       "POST /increment HTTP/1.1\r\nContent-Length : 11\r\n"
       "\r\n" +
           body},
      {"folded header",
       "POST /increment HTTP/1.1\r\nX: a\r\n  b\r\nContent-Length: 0\r\n"
       "\r\n"},
      {"absolute URI to elsewhere",
       "POST http://evil.example/increment HTTP/1.1\r\n"
       "Content-Length: 11\r\n\r\n" +
           body},
      {"path traversal", Get("/../../etc/passwd")},
      {"double slash", Post("//increment", body)},
      {"trailing slash", Post("/increment/", body)},
      {"unknown path", Get("/admin")},
      {"unknown path post", Post("/incr", body)},
      {"PUT", "PUT /increment HTTP/1.1\r\nContent-Length: 11\r\n\r\n" + body},
      {"DELETE", "DELETE /total HTTP/1.1\r\n\r\n"},
      {"PATCH", "PATCH /increment HTTP/1.1\r\nContent-Length: 11\r\n\r\n" + body},
      {"OPTIONS", "OPTIONS * HTTP/1.1\r\n\r\n"},
      {"TRACE", "TRACE /increment HTTP/1.1\r\n\r\n"},
      {"CONNECT", "CONNECT evil.example:443 HTTP/1.1\r\n\r\n"},
      {"made-up method", "BREW /increment HTTP/1.1\r\nContent-Length: 11\r\n\r\n" + body},
      {"lower-case method", "post /increment HTTP/1.1\r\nContent-Length: 11\r\n\r\n" + body},
      {"GET with a body", "GET /increment HTTP/1.1\r\nContent-Length: 11\r\n\r\n" + body},
      {"HEAD on increment", "HEAD /increment HTTP/1.1\r\n\r\n"},
      {"range request", "GET /total HTTP/1.1\r\nRange: bytes=0-1,3-4\r\n\r\n"},
      {"smuggled second request", Post("/increment", "{}", "Content-Length: 0\r\n") +
                                      "POST /increment HTTP/1.1\r\nContent-Length: 11\r\n\r\n" +
                                      body},
      {"REMOTE_ADDR spoof", Post("/increment", "not json", "REMOTE_ADDR: 10.0.0.1\r\n")},
      {"Expect continue with bad body", Post("/increment", "nope", "Expect: 100-continue\r\n")},
      {"half a request, then EOF", "POST /increment HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"va"},
      {"just garbage, then EOF", std::string(3000, '\x01')},
  };
  barrage.insert(barrage.end(), raw.begin(), raw.end());
  return barrage;
}

// What shows every count: the default counter's total and parts, a named and
// a windowed counter, and the listing.
std::vector<std::string> Snapshot(HttpConnection& aggregator) {
  return {aggregator.Get("/total?perShard=true").body,
          aggregator.Get("/total?counter=views&perShard=true").body,
          aggregator.Get("/total?counter=rate&window=3600").body.substr(0, 40),
          aggregator.Get("/counters").body};
}

TEST(BarrageTest, MalformedRequestsChangeNoCountAndTheServerStillServes) {
  Cluster cluster({"--in-memory"});
  ASSERT_TRUE(cluster.ready());
  HttpConnection http(cluster.aggregator());
  ASSERT_EQ(http.Post("/increment", R"({"value":7})").status, 200);
  ASSERT_EQ(http.Post("/increment", R"({"value":5})").status, 200);
  ASSERT_EQ(http.Post("/increment", R"({"value":-3})").status, 200);
  ASSERT_EQ(http.Post("/increment", R"({"value":3,"counter":"views"})").status, 200);
  ASSERT_EQ(http.Post("/increment", R"({"value":4,"counter":"rate","window":3600})").status, 200);
  const std::vector<std::string> before = Snapshot(http);
  ASSERT_EQ(before[0], R"({"total":9,"shards":[{"shardId":0,"count":-3},{"shardId":1,"count":7},)"
                       R"({"shardId":2,"count":5}]})");

  int tried = 0;
  for (bool aggregator : {true, false}) {
    const std::string target = aggregator ? cluster.aggregator() : cluster.shard(1);
    for (const Malformed& input : Barrage(aggregator)) {
      OpenSocket connection(target);
      ASSERT_TRUE(connection.ok()) << input.name;
      connection.Send(input.bytes);
      connection.FinishSending();
      std::string answer = connection.ReadAll(3s);
      ++tried;
      // An interim answer may come first.
      if (answer.starts_with("HTTP/1.1 100 Continue\r\n\r\n")) answer.erase(0, 25);
      // Refused with a JSON error, or (for what is not HTTP at all) closed unanswered.
      if (answer.empty()) continue;
      // 4xx, or 501 for a transfer coding other than chunked.
      EXPECT_TRUE(answer.starts_with("HTTP/1.1 4") || answer.starts_with("HTTP/1.1 501 "))
          << input.name << ": " << answer.substr(0, 300);
      // A HEAD answer carries no body.
      if (!input.bytes.starts_with("HEAD")) {
        EXPECT_NE(answer.find(R"({"error":")"), std::string::npos)
            << input.name << ": " << answer.substr(0, 300);
      }
    }
  }
  std::printf("malformed inputs tried: %d (aggregator and shard 1)\n", tried);

  EXPECT_EQ(Snapshot(http), before);
  HttpConnection shard1(cluster.shard(1));
  EXPECT_EQ(shard1.Get("/count").body, R"({"shardId":1,"count":7})");
  EXPECT_EQ(http.Post("/increment", R"({"value":1})").body,
            R"({"success":true,"shardId":1,"count":8})");
  RunResult total = cluster.Run({"total"});
  EXPECT_EQ(total.exit_code, 0) << total.err;
  EXPECT_EQ(total.out, "10\n");
}

}  // namespace
}  // namespace shardctl::testing
