// HttpClient against a scripted server on a loopback socket: answers of
// every shape shardctl's own server never sends, and how each failure is
// reported (kUnavailable: surely not applied; kTimeout: outcome unknown).
#include "net/http_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::net {
namespace {

using namespace std::chrono_literals;

// Listens on a free loopback port; for each connection it accepts, reads one
// request and sends the next scripted answer (then closes if told to).
class ScriptedServer {
 public:
  struct Answer {
    std::string bytes;
    bool close_after = false;
  };

  explicit ScriptedServer(std::vector<Answer> answers) : answers_(std::move(answers)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t length = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }

  Url url() const { return {"127.0.0.1", port_}; }
  int connections() const { return connections_; }

 private:
  void Serve() {
    size_t next = 0;
    while (next < answers_.size()) {
      int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      ++connections_;
      while (next < answers_.size()) {
        std::string request;
        char chunk[4096];
        // One request: the tests send small ones that arrive whole.
        ssize_t n = ::recv(client, chunk, sizeof(chunk), 0);
        if (n <= 0) break;
        const Answer& answer = answers_[next++];
        ::send(client, answer.bytes.data(), answer.bytes.size(), MSG_NOSIGNAL);
        if (answer.close_after) break;
      }
      ::close(client);
    }
  }

  std::vector<Answer> answers_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

HttpClientOptions Quick() {
  HttpClientOptions options;
  options.connect_timeout = 500ms;
  options.request_timeout = 500ms;
  return options;
}

TEST(HttpClientTest, ReadsAnAnswerAfterAnInterimOneAndReusesTheConnection) {
  ScriptedServer server({
      {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"},
      {"HTTP/1.1 422 Unprocessable Content\r\ncontent-length: 13\r\n\r\n{\"error\":\"x\"}"},
  });
  HttpClient client(server.url(), Quick());
  core::Result<HttpReply> first = client.Post("/increment", R"({"value":1})");
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "{}");
  core::Result<HttpReply> second = client.Get("/total");
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->status, 422);
  EXPECT_EQ(second->body, R"({"error":"x"})");
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClientTest, AnAnswerLargerThanTheClientTakesIsRefused) {
  const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"total\":1}";
  ScriptedServer server({{answer}, {answer}});
  HttpClientOptions small = Quick();
  small.max_answer_bytes = 10;
  EXPECT_EQ(HttpClient(server.url(), small).Get("/total").status().code(),
            core::Code::kBadGateway);
  small.max_answer_bytes = 11;
  EXPECT_TRUE(HttpClient(server.url(), small).Get("/total").ok());
}

TEST(HttpClientTest, AnAnswerWithoutLengthEndsWithTheConnection) {
  ScriptedServer server({{"HTTP/1.0 200 OK\r\n\r\n{\"total\":3}", true}});
  HttpClient client(server.url(), Quick());
  core::Result<HttpReply> reply = client.Get("/total");
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->body, R"({"total":3})");
}

TEST(HttpClientTest, AConnectionClosedMidAnswerIsAnUnknownOutcome) {
  ScriptedServer server({{"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"succ", true}});
  HttpClient client(server.url(), Quick());
  core::Result<HttpReply> reply = client.Post("/increment", R"({"value":1})");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::Code::kTimeout);
  EXPECT_NE(reply.status().message().find("may or may not have been applied"), std::string::npos);
}

TEST(HttpClientTest, ReadsAChunkedAnswerAndReusesTheConnection) {
  // As etcd (Go's net/http) sends every answer over 2 KB, and its errors
  // with a trailer field.
  ScriptedServer server({
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
       "2\r\n{\"\r\n6\r\na\":1}\n\r\n0\r\n\r\n"},
      {"HTTP/1.1 404 Not Found\r\nTrailer: Grpc-Trailer-Content-Type\r\n"
       "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nGrpc-Trailer-Content-Type: x\r\n\r\n"},
  });
  HttpClient client(server.url(), Quick());
  core::Result<HttpReply> first = client.Post("/v3/kv/range", "{}");
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->body, "{\"a\":1}\n");
  core::Result<HttpReply> second = client.Post("/v3/lease/revoke", "{}");
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->status, 404);
  EXPECT_EQ(second->body, "{}");
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClientTest, ABadlyChunkedOrNonHttpAnswerIsABadGateway) {
  for (const char* bytes :
       {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n"}) {
    ScriptedServer server({{bytes, true}});
    HttpClient client(server.url(), Quick());
    core::Result<HttpReply> reply = client.Get("/total");
    ASSERT_FALSE(reply.ok()) << bytes;
    EXPECT_EQ(reply.status().code(), core::Code::kBadGateway) << bytes;
  }
}

TEST(HttpClientTest, AStreamIsReadAsItsChunksArrive) {
  // A second answer, never asked for, keeps the server from closing the stream.
  ScriptedServer server({{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "3\r\none\r\n3\r\ntwo\r\n"},
                         {""}});
  HttpClient client(server.url(), Quick());
  core::Result<std::unique_ptr<HttpStream>> stream = client.PostStream("/v3/watch", "{}");
  ASSERT_TRUE(stream.ok()) << stream.status().message();
  EXPECT_EQ((*stream)->status(), 200);
  std::string body;
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (body.size() < 6 && std::chrono::steady_clock::now() < deadline) {
    core::Result<std::string> data = (*stream)->Read(deadline);
    ASSERT_TRUE(data.ok()) << data.status().message();
    body += *data;
  }
  EXPECT_EQ(body, "onetwo");
  // Nothing more comes: an empty read once the deadline passes.
  core::Result<std::string> nothing = (*stream)->Read(std::chrono::steady_clock::now() + 10ms);
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(*nothing, "");
  EXPECT_FALSE((*stream)->ended());
}

TEST(HttpClientTest, AStreamClosedBeforeItsLastChunkIsUnavailable) {
  ScriptedServer server({{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true}});
  HttpClient client(server.url(), Quick());
  core::Result<std::unique_ptr<HttpStream>> stream = client.PostStream("/v3/watch", "{}");
  ASSERT_TRUE(stream.ok()) << stream.status().message();
  core::Result<std::string> data = (*stream)->Read(std::chrono::steady_clock::now() + 2s);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), core::Code::kUnavailable);
}

TEST(HttpClientTest, AStreamEndsWithItsLastChunk) {
  ScriptedServer server(
      {{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"}});
  HttpClient client(server.url(), Quick());
  core::Result<std::unique_ptr<HttpStream>> stream = client.PostStream("/v3/lease/keepalive", "{}");
  ASSERT_TRUE(stream.ok()) << stream.status().message();
  EXPECT_EQ(*(*stream)->Read(std::chrono::steady_clock::now() + 2s), "{}");
  EXPECT_TRUE((*stream)->ended());
  EXPECT_EQ((*stream)->Read(std::chrono::steady_clock::now()).status().code(),
            core::Code::kUnavailable);
}

TEST(HttpClientTest, AnIdleConnectionTheServerClosedIsNotReused) {
  ScriptedServer server({
      {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", true},  // then closes
      {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"},
  });
  HttpClient client(server.url(), Quick());
  ASSERT_TRUE(client.Get("/total").ok());
  // The server closed the first connection after answering: the second
  // request must go on a new one, not fail on the old.
  core::Result<HttpReply> reply = HttpReply{};
  for (int i = 0; i < 100 && server.connections() < 2; ++i) {
    reply = client.Get("/total");
    if (reply.ok()) break;
  }
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClientTest, NobodyListeningIsUnavailable) {
  Url url;
  {
    ScriptedServer server({});
    url = server.url();
  }  // closed: the port refuses now
  HttpClient client(url, Quick());
  core::Result<HttpReply> reply = client.Get("/total");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::Code::kUnavailable);
  EXPECT_NE(reply.status().message().find("cannot connect"), std::string::npos);
}

TEST(HttpClientTest, AHostNameThatDoesNotResolveIsUnavailableSayingSo) {
  // A label longer than DNS allows (63 bytes): the resolver fails it without
  // asking any name server.
  const std::string host(64, 'a');
  core::Result<Url> url = ParseUrl("http://" + host + ":4000");
  ASSERT_TRUE(url.ok()) << url.status().message();
  HttpClient client(*url, Quick());
  core::Result<HttpReply> reply = client.Get("/total");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::Code::kUnavailable);
  EXPECT_TRUE(reply.status().message().starts_with("cannot connect to http://" + host +
                                                   ":4000 (cannot resolve " + host + ": "))
      << reply.status().message();
}

// --- https:// URLs, against servers that do not speak TLS (the TLS tests with
// certificates are in tests/integration/tls_client_test.cc) ---------------------------------

Url Https(Url url) {
  url.tls = true;
  return url;
}

TEST(HttpClientTest, AnHttpsUrlToAPlainHttpServerIsUnavailableSayingSo) {
  // As shardctl's own plain server does (and most others): it answers the
  // ClientHello as bytes it cannot read.
  ScriptedServer server({{"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", true}});
  HttpClient client(Https(server.url()), Quick());
  core::Result<HttpReply> reply = client.Get("/total");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::Code::kUnavailable);
  EXPECT_EQ(reply.status().message(), "TLS: with " + Https(server.url()).ToString() +
                                          ": the server does not speak TLS (is it http://?)");
}

TEST(HttpClientTest, AServerThatClosesInTheHandshakeIsUnavailable) {
  ScriptedServer server({{"", true}});  // reads the ClientHello, then closes
  HttpClient client(Https(server.url()), Quick());
  core::Result<HttpReply> reply = client.Post("/increment", "{}");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::Code::kUnavailable);
  EXPECT_TRUE(reply.status().message().starts_with("TLS: with https://127.0.0.1:"))
      << reply.status().message();
}

TEST(HttpClientTest, AHandshakeThatDoesNotFinishInTimeIsUnavailable) {
  ScriptedServer server({{""}, {""}});  // reads the ClientHello, answers nothing, holds on
  HttpClient client(Https(server.url()), Quick());
  auto start = std::chrono::steady_clock::now();
  core::Result<std::unique_ptr<HttpStream>> stream = client.PostStream("/v3/watch", "{}");
  ASSERT_FALSE(stream.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  // Nothing was sent: surely not applied.
  EXPECT_EQ(stream.status().code(), core::Code::kUnavailable);
  EXPECT_NE(stream.status().message().find("the TLS handshake did not finish within 500 ms"),
            std::string::npos)
      << stream.status().message();
}

}  // namespace
}  // namespace shardctl::net
