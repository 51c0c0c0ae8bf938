// HttpServer's answers that come later, on a loopback socket: handlers that
// answer through an HttpResponder (from another thread, out of order, never),
// handlers that run on the blocking pool, and AsyncHttpClient relaying to
// another server from a loop's own thread.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/protocol.h"
#include "net/event_loop.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/socket_io.h"

namespace shardctl::net {
namespace {

using namespace std::chrono_literals;

// A raw connection to the server: sends bytes as given, reads what comes.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  }
  ~RawConnection() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }
  // True if the server closes the connection (with nothing more sent) within 5 s.
  bool ClosedByServer() {
    char byte;
    return Await(fd_, POLLIN, std::chrono::steady_clock::now() + 5s) &&
           ::recv(fd_, &byte, 1, 0) == 0;
  }
  void Send(const std::string& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Reads until what came ends with `end`, or 5 s pass.
  std::string ReadUntilEnd(const std::string& end) {
    std::string received;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!received.ends_with(end) && Await(fd_, POLLIN, deadline)) {
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) break;
      received.append(chunk, static_cast<size_t>(n));
    }
    return received;
  }
  // Reads until `count` answers have come whole (each has a Content-Length),
  // or 5 s pass.
  std::string ReadAnswers(int count) {
    std::string received;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (CountAnswers(received) < count && std::chrono::steady_clock::now() < deadline) {
      char chunk[4096];
      if (!Await(fd_, POLLIN, deadline)) break;
      ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) break;
      received.append(chunk, static_cast<size_t>(n));
    }
    return received;
  }

 private:
  static int CountAnswers(const std::string& bytes) {
    int answers = 0;
    size_t at = 0;
    for (;;) {
      size_t head_end = bytes.find("\r\n\r\n", at);
      if (head_end == std::string::npos) return answers;
      size_t length_at = bytes.find("Content-Length: ", at);
      size_t length = std::stoul(bytes.substr(length_at + 16));
      if (bytes.size() < head_end + 4 + length) return answers;
      ++answers;
      at = head_end + 4 + length;
    }
  }
  int fd_ = -1;
};

std::string Post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

HttpClientOptions Quick() {
  HttpClientOptions options;
  options.connect_timeout = 500ms;
  options.request_timeout = 500ms;
  return options;
}

// Answers later, from its own thread, whatever the test releases.
class Later {
 public:
  ~Later() {
    for (std::thread& thread : threads_) thread.join();
  }
  void Hold(HttpResponder respond, std::string body) {
    std::lock_guard lock(mutex_);
    held_.push_back({std::move(respond), std::move(body)});
    arrived_.notify_all();
  }
  // Waits until `count` requests are held.
  bool WaitFor(size_t count) {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, 5s, [&] { return held_.size() >= count; });
  }
  // Answers held request `i` from a thread of its own.
  void Release(size_t i) {
    std::lock_guard lock(mutex_);
    threads_.emplace_back([held = held_[i]] { held.respond(HttpResponse{200, held.body}); });
  }
  // Answers the held request whose body is `body`.
  void ReleaseBody(const std::string& body) {
    size_t found = 0;
    {
      std::lock_guard lock(mutex_);
      while (found < held_.size() && held_[found].body != body) ++found;
    }
    Release(found);
  }
  void DropAll() {
    std::lock_guard lock(mutex_);
    held_.clear();
  }

 private:
  struct Held {
    HttpResponder respond;
    std::string body;
  };
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<Held> held_;
  std::vector<std::thread> threads_;
};

class HttpServerAsyncTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options = {}) {
    server_ = std::make_unique<HttpServer>(options);
    server_->HandleAsync("POST", "/later", [this](const HttpRequest& request, HttpResponder respond) {
      later_.Hold(std::move(respond), std::string(request.body()));
    });
    server_->Handle("GET", "/now", [](const HttpRequest&) { return HttpResponse{200, "{}"}; });
    server_->HandleBlocking("POST", "/blocking", [](const HttpRequest& request) {
      std::vector<std::string> tags = request.HeaderValues("X-Tag");
      return HttpResponse{
          200, fmt::format(R"({{"onLoop":{},"query":"{}","tag":"{}","body":{}}})",
                           EventLoop::Current() != nullptr, request.Param("q").value_or(""),
                           tags.empty() ? "" : tags[0], request.body())};
    });
    ASSERT_TRUE(server_->Listen("127.0.0.1", 0).ok());
  }

  Later later_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerAsyncTest, AnswersComeInTheOrderOfTheRequestsWhateverOrderTheyAreGivenIn) {
  Start();
  RawConnection first(server_->port());
  RawConnection second(server_->port());
  // Pipelined: the second request of `first` waits behind its first.
  first.Send(Post("/later", R"({"n":1})") + "GET /now HTTP/1.1\r\n\r\n");
  second.Send(Post("/later", R"({"n":2})"));
  ASSERT_TRUE(later_.WaitFor(2));
  later_.ReleaseBody(R"({"n":2})");
  std::string to_second = second.ReadAnswers(1);
  EXPECT_NE(to_second.find(R"({"n":2})"), std::string::npos) << to_second;
  later_.ReleaseBody(R"({"n":1})");
  std::string to_first = first.ReadAnswers(2);
  size_t later_at = to_first.find(R"({"n":1})");
  size_t now_at = to_first.find("{}");
  ASSERT_NE(later_at, std::string::npos) << to_first;
  ASSERT_NE(now_at, std::string::npos) << to_first;
  EXPECT_LT(later_at, now_at) << to_first;
}

TEST_F(HttpServerAsyncTest, ARequestNeverAnsweredGets500AndTheConnectionGoesOn) {
  Start();
  RawConnection connection(server_->port());
  connection.Send(Post("/later", "{}"));
  ASSERT_TRUE(later_.WaitFor(1));
  later_.DropAll();
  std::string answer = connection.ReadAnswers(1);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 500 ")) << answer;
  connection.Send("GET /now HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(connection.ReadAnswers(1).starts_with("HTTP/1.1 200 "));
}

TEST_F(HttpServerAsyncTest, AnAnswerToAClosedConnectionIsDroppedAndTheServerGoesOn) {
  Start();
  {
    RawConnection gone(server_->port());
    gone.Send(Post("/later", "{}"));
    ASSERT_TRUE(later_.WaitFor(1));
  }
  later_.Release(0);
  RawConnection next(server_->port());
  next.Send("GET /now HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(next.ReadAnswers(1).starts_with("HTTP/1.1 200 "));
}

TEST_F(HttpServerAsyncTest, AClientThatStopsSendingStillGetsItsAnswer) {
  Start();
  RawConnection connection(server_->port());
  connection.Send(Post("/later", R"({"n":7})"));
  ASSERT_TRUE(later_.WaitFor(1));
  // No more requests: the server parks the connection rather than spin on it.
  connection.ShutdownWrite();
  later_.Release(0);
  EXPECT_NE(connection.ReadAnswers(1).find(R"({"n":7})"), std::string::npos);
}

TEST_F(HttpServerAsyncTest, BlockingHandlersRunOffTheLoopWithTheWholeRequest) {
  Start();
  RawConnection connection(server_->port());
  connection.Send(
      "POST /blocking?q=yes HTTP/1.1\r\nX-Tag: t1\r\nContent-Length: 2\r\n\r\n[]"
      "GET /now HTTP/1.1\r\n\r\n");
  std::string answers = connection.ReadAnswers(2);
  EXPECT_NE(answers.find(R"({"onLoop":false,"query":"yes","tag":"t1","body":[]})"),
            std::string::npos)
      << answers;
  EXPECT_LT(answers.find("onLoop"), answers.rfind("{}")) << answers;
}

TEST_F(HttpServerAsyncTest, StopWaitsForAnswersStillToCome) {
  Start();
  RawConnection connection(server_->port());
  connection.Send(Post("/later", R"({"n":3})"));
  ASSERT_TRUE(later_.WaitFor(1));
  std::thread stopper([this] { server_->Stop(); });
  later_.Release(0);
  std::string answer = connection.ReadAnswers(1);
  stopper.join();
  EXPECT_NE(answer.find(R"({"n":3})"), std::string::npos) << answer;
  // Whether the answer came before or after the loop saw the stop, the
  // connection is closed once it is out (it says "Connection: close" only
  // in the second case, which the test cannot order).
  EXPECT_TRUE(connection.ClosedByServer());
}

// --- Chunked request bodies, as they arrive on a socket ------------------------------------

// POST `path` with a body in the chunked coding: `chunks` as given.
std::string PostChunked(const std::string& path, const std::string& chunks,
                        const std::string& extra_headers = "") {
  return "POST " + path + " HTTP/1.1\r\n" + extra_headers + "Transfer-Encoding: chunked\r\n\r\n" +
         chunks;
}

TEST_F(HttpServerAsyncTest, BlockingHandlersSeeTheDecodedChunkedBody) {
  Start();
  RawConnection connection(server_->port());
  connection.Send(PostChunked("/blocking?q=c", "2\r\n[1\r\n3;x=y\r\n,2]\r\n0\r\nT: v\r\n\r\n",
                              "X-Tag: t2\r\n") +
                  "GET /now HTTP/1.1\r\n\r\n");
  std::string answers = connection.ReadAnswers(2);
  EXPECT_NE(answers.find(R"({"onLoop":false,"query":"c","tag":"t2","body":[1,2]})"),
            std::string::npos)
      << answers;
  EXPECT_LT(answers.find("onLoop"), answers.rfind("{}")) << answers;
}

TEST_F(HttpServerAsyncTest, AsyncHandlersSeeTheDecodedChunkedBody) {
  Start();
  RawConnection connection(server_->port());
  connection.Send(PostChunked("/later", "3\r\n{\"n\r\n4\r\n\":8}\r\n0\r\n\r\n") +
                  "GET /now HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(later_.WaitFor(1));
  later_.ReleaseBody(R"({"n":8})");
  std::string answers = connection.ReadAnswers(2);
  size_t later_at = answers.find(R"({"n":8})");
  ASSERT_NE(later_at, std::string::npos) << answers;
  EXPECT_LT(later_at, answers.rfind("{}")) << answers;
}

TEST_F(HttpServerAsyncTest, AChunkedBodySentInPiecesIsDecodedAsItArrives) {
  Start();
  RawConnection connection(server_->port());
  connection.Send(PostChunked("/blocking", "", "Expect: 100-continue\r\n"));
  EXPECT_EQ(connection.ReadUntilEnd("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  // Split inside a size line, inside data, inside a CRLF and inside the trailer.
  for (const char* piece :
       {"1", "2\r\n[\"abcdef", "ghijklmn\"]\r", "\n0\r\nX-A:", " b\r\n", "\r\n"}) {
    connection.Send(piece);
  }
  std::string answer = connection.ReadAnswers(1);
  EXPECT_NE(answer.find(R"("body":["abcdefghijklmn"])"), std::string::npos) << answer;
  // The connection goes on.
  connection.Send("GET /now HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(connection.ReadAnswers(1).starts_with("HTTP/1.1 200 "));
}

TEST_F(HttpServerAsyncTest, AnUnfinishedChunkedBodyGets408AtTheReadDeadline) {
  HttpServerOptions options;
  options.read_timeout = 300ms;
  Start(options);
  RawConnection connection(server_->port());
  auto start = std::chrono::steady_clock::now();
  connection.Send(PostChunked("/blocking", "2\r\n[]\r\n"));
  std::string answer = connection.ReadAnswers(1);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 408 ")) << answer;
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
  EXPECT_TRUE(connection.ClosedByServer());
}

TEST_F(HttpServerAsyncTest, AnOversizedChunkedBodyIsReadToItsEndAnswered413AndClosed) {
  Start();
  RawConnection connection(server_->port());
  // 70 KiB in 7 chunks, all sent before the answer is read, as Python's
  // http.client does: the 413 must not be lost to a reset connection.
  std::string chunks;
  for (int i = 0; i < 7; ++i) chunks += "2800\r\n" + std::string(0x2800, ' ') + "\r\n";
  connection.Send(PostChunked("/blocking", chunks + "0\r\n\r\n"));
  std::string answer = connection.ReadAnswers(1);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413 ")) << answer;
  EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << answer;
  EXPECT_TRUE(connection.ClosedByServer());
}

TEST_F(HttpServerAsyncTest, AnOversizedChunkedBodyLeftUnfinishedIsClosedWithoutAnotherAnswer) {
  HttpServerOptions options;
  options.read_timeout = 300ms;
  Start(options);
  RawConnection connection(server_->port());
  connection.Send(PostChunked("/blocking", "20000\r\nxyz"));  // 128 KiB announced
  std::string answer = connection.ReadAnswers(1);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413 ")) << answer;
  connection.Send(std::string(1000, 'x'));  // still read and dropped
  EXPECT_TRUE(connection.ClosedByServer());
}

// --- AsyncHttpClient, relayed through a server's loop --------------------------------------

// Listens on a free loopback port and answers each request it reads with
// `answer` (after `delay`), or closes the connection when `answer` is empty.
class Upstream {
 public:
  explicit Upstream(std::string answer, std::chrono::milliseconds delay = 0ms)
      : answer_(std::move(answer)), delay_(delay) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t length = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~Upstream() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    for (std::thread& client : clients_) client.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int connections() const { return connections_; }

 private:
  void Serve() {
    for (;;) {
      int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      ++connections_;
      clients_.emplace_back([this, client] {
        char chunk[4096];
        while (::recv(client, chunk, sizeof(chunk), 0) > 0) {
          std::this_thread::sleep_for(delay_);
          if (answer_.empty()) break;
          ::send(client, answer_.data(), answer_.size(), MSG_NOSIGNAL);
        }
        ::close(client);
      });
    }
  }
  std::string answer_;
  std::chrono::milliseconds delay_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
  std::vector<std::thread> clients_;
};

HttpServerOptions OneLoop() {
  HttpServerOptions options;
  options.threads = 1;
  return options;
}

// A server whose POST /relay sends its body to `upstream` with
// AsyncHttpClient and answers with what came back, or the failure's code.
class Relay {
 public:
  explicit Relay(int upstream_port, bool tls = false)
      : upstream_(Url{"127.0.0.1", upstream_port, tls}, Quick()) {
    server_.HandleAsync("POST", "/relay", [this](const HttpRequest& request, HttpResponder respond) {
      AsyncHttpClient::ForThisLoop(upstream_).Send(
          upstream_.FormatRequest(true, "/x", std::string(request.body()), {}),
          [respond](core::Result<HttpReply> reply) {
            if (!reply.ok()) {
              respond(HttpResponse{
                  599, fmt::format("{} {}", static_cast<int>(reply.status().code()),
                                   reply.status().message())});
              return;
            }
            respond(HttpResponse{reply->status, reply->body});
          });
    });
    EXPECT_TRUE(server_.Listen("127.0.0.1", 0).ok());
  }
  core::Result<HttpReply> Call() {
    HttpClientOptions options;
    options.request_timeout = 5s;
    HttpClient client(Url{"127.0.0.1", server_.port()}, options);
    return client.Post("/relay", "{}");
  }

 private:
  HttpClient upstream_;
  HttpServer server_{OneLoop()};
};

TEST(AsyncHttpClientTest, RelaysAnswersAndReusesItsConnections) {
  Upstream upstream("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"total\":1}");
  Relay relay(upstream.port());
  for (int i = 0; i < 5; ++i) {
    core::Result<HttpReply> reply = relay.Call();
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->body, R"({"total":1})");
  }
  EXPECT_EQ(upstream.connections(), 1);
}

TEST(AsyncHttpClientTest, ManyAtOnceEachGetTheirAnswer) {
  Upstream upstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 5ms);
  Relay relay(upstream.port());
  std::atomic<int> answered{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 16; ++i) {
    callers.emplace_back([&] {
      for (int j = 0; j < 5; ++j) {
        core::Result<HttpReply> reply = relay.Call();
        if (reply.ok() && reply->status == 200 && reply->body == "{}") ++answered;
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(answered, 80);
}

TEST(AsyncHttpClientTest, ARefusedConnectionIsUnavailable) {
  int port;
  {
    Upstream gone("x");
    port = gone.port();
  }
  Relay relay(port);
  core::Result<HttpReply> reply = relay.Call();
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->status, 599);
  EXPECT_TRUE(reply->body.starts_with(
      std::to_string(static_cast<int>(core::Code::kUnavailable)) + " cannot connect"))
      << reply->body;
}

TEST(AsyncHttpClientTest, NoAnswerInTimeOrALostConnectionIsAnUnknownOutcome) {
  for (auto [answer, delay] : {std::pair<std::string, std::chrono::milliseconds>{"x", 900ms},
                               std::pair<std::string, std::chrono::milliseconds>{"", 0ms}}) {
    Upstream upstream(answer, delay);
    Relay relay(upstream.port());
    core::Result<HttpReply> reply = relay.Call();
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    EXPECT_EQ(reply->status, 599);
    EXPECT_NE(reply->body.find("may or may not have been applied"), std::string::npos)
        << reply->body;
  }
}

TEST(AsyncHttpClientTest, ANonHttpAnswerIsABadGateway) {
  Upstream upstream("SSH-2.0-OpenSSH\r\n\r\n");
  Relay relay(upstream.port());
  core::Result<HttpReply> reply = relay.Call();
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_TRUE(reply->body.starts_with(std::to_string(static_cast<int>(core::Code::kBadGateway))))
      << reply->body;
}

TEST(AsyncHttpClientTest, AnHttpsUpstreamThatDoesNotSpeakTlsIsUnavailableSayingSo) {
  Upstream upstream("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
  Relay relay(upstream.port(), /*tls=*/true);
  core::Result<HttpReply> reply = relay.Call();
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->status, 599);
  EXPECT_EQ(reply->body,
            fmt::format("{} TLS: with https://127.0.0.1:{}: the server does not speak TLS (is it "
                        "http://?)",
                        static_cast<int>(core::Code::kUnavailable), upstream.port()));
}

TEST(AsyncHttpClientTest, AHandshakeThatDoesNotFinishInTimeIsUnavailable) {
  Upstream upstream("x", 2s);  // takes the ClientHello, answers after the connect timeout
  Relay relay(upstream.port(), /*tls=*/true);
  core::Result<HttpReply> reply = relay.Call();
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->status, 599);
  EXPECT_TRUE(reply->body.starts_with(std::to_string(static_cast<int>(core::Code::kUnavailable)) +
                                      " cannot connect to https://"))
      << reply->body;
  EXPECT_NE(reply->body.find("the TLS handshake did not finish within 500 ms"), std::string::npos)
      << reply->body;
}

}  // namespace
}  // namespace shardctl::net
