// The client side of TLS against real TLS servers: shardctl's own (serve
// --tls-cert: OpenSSL), etcd's (Go's crypto/tls) and, in this process,
// net's HttpServer and a scripted server over net::TlsSession. Every client
// command takes --cacert/--cert/--key; a TLS failure says why and exits 3;
// HttpClient keeps a pooled connection's session; AsyncHttpClient drives its
// handshakes in an event loop; the etcd store and the cluster commands work
// over https://, with client certificates.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/coord_store.h"
#include "core/status.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/tls.h"
#include "net/url.h"
#include "tests/integration/harness.h"
#include "tests/integration/tls_harness.h"
#include "topo/etcd_store.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

const TestPki& Pki() {
  const TestPki& pki = TestPki::Shared();
  EXPECT_TRUE(pki.ok()) << pki.error();
  return pki;
}

std::shared_ptr<const net::TlsContext> ClientContext(const std::string& ca,
                                                     const std::string& cert = "",
                                                     const std::string& key = "") {
  core::Result<std::shared_ptr<const net::TlsContext>> made =
      net::TlsContext::ForClient({.ca = ca, .cert = cert, .key = key});
  EXPECT_TRUE(made.ok()) << made.status().message();
  return made.ok() ? *made : nullptr;
}

std::shared_ptr<const net::TlsContext> ServerContext(const std::string& cert,
                                                     const std::string& key,
                                                     const std::string& client_ca = "") {
  core::Result<std::shared_ptr<const net::TlsContext>> made =
      net::TlsContext::ForServer({.cert = cert, .key = key, .client_ca = client_ca});
  EXPECT_TRUE(made.ok()) << made.status().message();
  return made.ok() ? *made : nullptr;
}

net::HttpClientOptions Options(std::shared_ptr<const net::TlsContext> tls) {
  net::HttpClientOptions options;
  options.connect_timeout = 2s;
  options.request_timeout = 2s;
  options.tls = std::move(tls);
  return options;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// --- In this process: net's clients against TLS servers -----------------------------------

// Listens on a free loopback port and speaks TLS (net::TlsSession, on a
// blocking socket) on each connection it accepts: reads one request (small,
// in one record), sends the next scripted answer, then ends the connection
// if the answer says so: with a close_notify, or reset (no close_notify, an
// RST).
class ScriptedTlsServer {
 public:
  enum class End { kKeep, kClose, kReset };
  struct Answer {
    std::string bytes;
    End end = End::kKeep;
  };

  ScriptedTlsServer(std::shared_ptr<const net::TlsContext> context, std::vector<Answer> answers)
      : context_(std::move(context)), answers_(std::move(answers)) {
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
  ~ScriptedTlsServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }

  net::Url url() const { return {"127.0.0.1", port_, /*tls=*/true}; }
  int connections() const { return connections_; }
  // Waits up to 5 s until `count` connections have ended on this side.
  bool WaitForEnded(int count) {
    std::unique_lock lock(mutex_);
    return ended_changed_.wait_for(lock, 5s, [&] { return ended_ >= count; });
  }

 private:
  void Serve() {
    size_t next = 0;
    while (next < answers_.size()) {
      int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      ++connections_;
      std::unique_ptr<net::TlsSession> tls = net::TlsSession::Accept(context_, client);
      End end = End::kClose;
      while (tls && next < answers_.size()) {
        char chunk[4096];
        size_t moved = 0;
        // The first read does the handshake.
        if (tls->Read(chunk, sizeof(chunk), &moved) != net::TlsIo::kDone) break;
        const Answer& answer = answers_[next++];
        for (size_t sent = 0; sent < answer.bytes.size(); sent += moved) {
          if (tls->Write(answer.bytes.data() + sent, answer.bytes.size() - sent, &moved) !=
              net::TlsIo::kDone) {
            break;
          }
        }
        end = answer.end;
        if (end != End::kKeep) break;
      }
      if (end == End::kReset) {
        linger reset{1, 0};
        ::setsockopt(client, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
      } else if (tls) {
        tls->Shutdown();
      }
      tls.reset();
      ::close(client);
      std::lock_guard lock(mutex_);
      ++ended_;
      ended_changed_.notify_all();
    }
  }

  std::shared_ptr<const net::TlsContext> context_;
  std::vector<Answer> answers_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::condition_variable ended_changed_;
  int ended_ = 0;  // guarded by mutex_
  std::thread thread_;
};

const std::string kTotalAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"total\":7}";

TEST(TlsHttpClientTest, APooledConnectionKeepsItsSession) {
  const TestPki& pki = Pki();
  ScriptedTlsServer server(ServerContext(pki.server_cert(), pki.server_key()),
                           {{kTotalAnswer}, {kTotalAnswer}, {kTotalAnswer}});
  net::HttpClient client(server.url(), Options(ClientContext(pki.ca_cert())));
  for (int i = 0; i < 3; ++i) {
    core::Result<net::HttpReply> reply = client.Get("/total");
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->body, R"({"total":7})");
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST(TlsHttpClientTest, ASessionThatEndsBeforeTheAnswerIsWholeIsAnUnknownOutcome) {
  const TestPki& pki = Pki();
  for (ScriptedTlsServer::End end :
       {ScriptedTlsServer::End::kClose, ScriptedTlsServer::End::kReset}) {
    ScriptedTlsServer server(ServerContext(pki.server_cert(), pki.server_key()),
                             {{"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"succ", end}});
    net::HttpClient client(server.url(), Options(ClientContext(pki.ca_cert())));
    core::Result<net::HttpReply> reply = client.Post("/increment", R"({"value":1})");
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), core::Code::kTimeout);
    EXPECT_TRUE(Contains(reply.status().message(), "may or may not have been applied"))
        << reply.status().message();
  }
}

// OpenSSL's own socket BIO writes with write(2): closing a pooled connection
// the server has reset (its close_notify) raised SIGPIPE, which killed this
// test's process.
TEST(TlsHttpClientTest, AConnectionTheServerResetIsClosedWithoutSigpipeAndNotReused) {
  const TestPki& pki = Pki();
  ScriptedTlsServer server(ServerContext(pki.server_cert(), pki.server_key()),
                           {{kTotalAnswer, ScriptedTlsServer::End::kReset}, {kTotalAnswer}});
  net::HttpClient client(server.url(), Options(ClientContext(pki.ca_cert())));
  ASSERT_TRUE(client.Get("/total").ok());
  ASSERT_TRUE(server.WaitForEnded(1));
  core::Result<net::HttpReply> reply = client.Get("/total");
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->body, R"({"total":7})");
  EXPECT_EQ(server.connections(), 2);
}

TEST(TlsHttpClientTest, AServerThatTakesNoPeerCertificateOfOursIsUnavailableSayingWhy) {
  const TestPki& pki = Pki();
  net::HttpServerOptions options;
  options.threads = 1;
  options.tls = ServerContext(pki.server_cert(), pki.server_key(), pki.ca_cert());
  net::HttpServer server(options);
  server.Handle("GET", "/total", [](const net::HttpRequest&) {
    return net::HttpResponse{200, R"({"total":1})"};
  });
  ASSERT_TRUE(server.Listen("127.0.0.1", 0).ok());
  const net::Url url{"127.0.0.1", server.port(), /*tls=*/true};

  // TLS 1.3: the refusal comes after our handshake, in place of the answer.
  for (const auto& [cert, key, why] :
       {std::tuple{std::string(), std::string(),
                   std::string("the server requires a client certificate (pass --cert and --key)")},
        std::tuple{pki.other_client_cert(), pki.other_client_key(),
                   std::string("the server refused our client certificate")}}) {
    net::HttpClient client(url, Options(ClientContext(pki.ca_cert(), cert, key)));
    core::Result<net::HttpReply> reply = client.Get("/total");
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), core::Code::kUnavailable);
    EXPECT_TRUE(reply.status().message().starts_with(
        fmt::format("TLS: with https://127.0.0.1:{}: {}", server.port(), why)))
        << reply.status().message();
    core::Result<std::unique_ptr<net::HttpStream>> stream = client.PostStream("/watch", "{}");
    ASSERT_FALSE(stream.ok());
    EXPECT_EQ(stream.status().code(), core::Code::kUnavailable);
    EXPECT_TRUE(Contains(stream.status().message(), why)) << stream.status().message();
  }

  net::HttpClient accepted(
      url, Options(ClientContext(pki.ca_cert(), pki.client_cert(), pki.client_key())));
  core::Result<net::HttpReply> reply = accepted.Get("/total");
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->body, R"({"total":1})");
}

// A plain server with one loop whose POST /relay sends its body on with
// AsyncHttpClient to `upstream`, and answers with what came back, or 599
// and "<code name>: <message>".
class Relay {
 public:
  Relay(net::Url upstream, net::HttpClientOptions options)
      : upstream_(std::move(upstream), std::move(options)) {
    server_.HandleAsync(
        "POST", "/relay", [this](const net::HttpRequest& request, net::HttpResponder respond) {
          net::AsyncHttpClient::ForThisLoop(upstream_).Send(
              upstream_.FormatRequest(true, "/x", std::string(request.body()), {}),
              [respond](core::Result<net::HttpReply> reply) {
                if (!reply.ok()) {
                  respond(net::HttpResponse{
                      599, fmt::format("{}: {}", core::CodeName(reply.status().code()),
                                       reply.status().message())});
                  return;
                }
                respond(net::HttpResponse{reply->status, reply->body});
              });
        });
    EXPECT_TRUE(server_.Listen("127.0.0.1", 0).ok());
  }
  core::Result<net::HttpReply> Call(const std::string& body = "{}") {
    net::HttpClientOptions options;
    options.request_timeout = 10s;
    net::HttpClient client(net::Url{"127.0.0.1", server_.port()}, options);
    return client.Post("/relay", body);
  }

 private:
  static net::HttpServerOptions OneLoop() {
    net::HttpServerOptions options;
    options.threads = 1;
    return options;
  }
  net::HttpClient upstream_;
  net::HttpServer server_{OneLoop()};
};

// An HTTPS server asking for client certificates, whose POST /x answers the
// body it got.
class EchoServer {
 public:
  explicit EchoServer(const TestPki& pki) {
    net::HttpServerOptions options;
    options.threads = 2;
    options.tls = ServerContext(pki.server_cert(), pki.server_key(), pki.ca_cert());
    server_ = std::make_unique<net::HttpServer>(options);
    server_->Handle("POST", "/x", [](const net::HttpRequest& request) {
      return net::HttpResponse{200, std::string(request.body())};
    });
    EXPECT_TRUE(server_->Listen("127.0.0.1", 0).ok());
  }
  net::Url url() const { return {"127.0.0.1", server_->port(), /*tls=*/true}; }

 private:
  std::unique_ptr<net::HttpServer> server_;
};

TEST(TlsAsyncHttpClientTest, ManyRequestsAtOnceOverMutualTls) {
  const TestPki& pki = Pki();
  EchoServer upstream(pki);
  Relay relay(upstream.url(),
              Options(ClientContext(pki.ca_cert(), pki.client_cert(), pki.client_key())));
  std::atomic<int> answered{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 16; ++i) {
    callers.emplace_back([&relay, &answered, i] {
      for (int j = 0; j < 5; ++j) {
        const std::string body = fmt::format(R"({{"caller":{},"call":{}}})", i, j);
        core::Result<net::HttpReply> reply = relay.Call(body);
        if (reply.ok() && reply->status == 200 && reply->body == body) {
          ++answered;
        } else {
          ADD_FAILURE() << (reply.ok() ? reply->body : reply.status().message());
        }
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(answered, 80);
}

TEST(TlsAsyncHttpClientTest, AKeptConnectionKeepsItsSession) {
  const TestPki& pki = Pki();
  ScriptedTlsServer upstream(ServerContext(pki.server_cert(), pki.server_key()),
                             {{kTotalAnswer}, {kTotalAnswer}, {kTotalAnswer}, {kTotalAnswer}});
  Relay relay(upstream.url(), Options(ClientContext(pki.ca_cert())));
  for (int i = 0; i < 4; ++i) {
    core::Result<net::HttpReply> reply = relay.Call();
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    EXPECT_EQ(reply->status, 200) << reply->body;
    EXPECT_EQ(reply->body, R"({"total":7})");
  }
  EXPECT_EQ(upstream.connections(), 1);
}

TEST(TlsAsyncHttpClientTest, TlsFailuresAreUnavailableSayingWhy) {
  const TestPki& pki = Pki();
  EchoServer upstream(pki);
  const std::string peer = upstream.url().ToString();
  const std::pair<std::shared_ptr<const net::TlsContext>, std::string> cases[] = {
      {ClientContext(pki.other_ca_cert(), pki.client_cert(), pki.client_key()),
       "unavailable: TLS: cannot verify " + peer +
           ": the certificate is not signed by a trusted CA"},
      {ClientContext(pki.ca_cert()),
       "unavailable: TLS: with " + peer +
           ": the server requires a client certificate (pass --cert and --key)"},
      {ClientContext(pki.ca_cert(), pki.other_client_cert(), pki.other_client_key()),
       "unavailable: TLS: with " + peer + ": the server refused our client certificate"},
  };
  for (const auto& [context, expected] : cases) {
    Relay relay(upstream.url(), Options(context));
    core::Result<net::HttpReply> reply = relay.Call();
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    EXPECT_EQ(reply->status, 599) << reply->body;
    EXPECT_TRUE(reply->body.starts_with(expected)) << reply->body;
  }
}

TEST(TlsAsyncHttpClientTest, AnAnswerCutShortThroughTlsIsAnUnknownOutcome) {
  const TestPki& pki = Pki();
  ScriptedTlsServer upstream(
      ServerContext(pki.server_cert(), pki.server_key()),
      {{"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"succ", ScriptedTlsServer::End::kClose}});
  Relay relay(upstream.url(), Options(ClientContext(pki.ca_cert())));
  core::Result<net::HttpReply> reply = relay.Call();
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->status, 599);
  EXPECT_TRUE(reply->body.starts_with("timeout: "));
  EXPECT_TRUE(Contains(reply->body, "may or may not have been applied")) << reply->body;
}

// --- The shardctl binary against serve --tls-cert ----------------------------------------

// `args` with `more` after them.
std::vector<std::string> With(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

class TlsCommandsTest : public ::testing::Test {
 protected:
  // serve (an aggregator and its shards in one process) over HTTPS, asking
  // for client certificates signed by the test CA.
  void SetUp() override {
    ASSERT_TRUE(pki_.ok()) << pki_.error();
    cluster_ = std::make_unique<Cluster>(
        std::vector<std::string>{"--tls-cert", pki_.server_cert(), "--tls-key", pki_.server_key(),
                                 "--tls-client-ca", pki_.ca_cert()});
    ASSERT_TRUE(cluster_->ready()) << cluster_->process().Stderr();
    url_ = "https://" + cluster_->aggregator();
  }

  std::vector<std::string> Trusted() const { return {"--url", url_, "--cacert", pki_.ca_cert()}; }
  std::vector<std::string> Accepted() const {
    return With(Trusted(), {"--cert", pki_.client_cert(), "--key", pki_.client_key()});
  }

  const TestPki& pki_ = Pki();
  std::unique_ptr<Cluster> cluster_;
  std::string url_;
};

TEST_F(TlsCommandsTest, EveryClientCommandTalksHttpsWithAClientCertificate) {
  for (const char* value : {"2", "3"}) {
    RunResult inc = RunShardctl(With({"inc", value}, Accepted()));
    EXPECT_EQ(inc.exit_code, 0) << inc.err;
  }
  RunResult total = RunShardctl(With({"total"}, Accepted()));
  EXPECT_EQ(total.exit_code, 0) << total.err;
  EXPECT_EQ(total.out, "5\n");
  RunResult named = RunShardctl(With({"inc", "7", "-k", "visits"}, Accepted()));
  EXPECT_EQ(named.exit_code, 0) << named.err;
  RunResult counters = RunShardctl(With({"counters"}, Accepted()));
  EXPECT_EQ(counters.exit_code, 0) << counters.err;
  EXPECT_TRUE(Contains(counters.out, "visits")) << counters.out;
  RunResult status = RunShardctl(With({"status"}, Accepted()));
  EXPECT_EQ(status.exit_code, 0) << status.err;
  RunResult top = RunShardctl(With({"top", "-n", "1", "-i", "0.1", "--json"}, Accepted()));
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_TRUE(Contains(top.out, "\"total\":5")) << top.out;
  RunResult bench = RunShardctl(With({"bench", "-n", "300", "-c", "3", "-k", "bench"}, Accepted()));
  EXPECT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_TRUE(Contains(bench.out, "requests/s")) << bench.out;
  RunResult reset = RunShardctl(With({"reset", "visits", "--yes"}, Accepted()));
  EXPECT_EQ(reset.exit_code, 0) << reset.err;
}

TEST_F(TlsCommandsTest, TheFilesComeFromTheEnvironmentAndTheOptionsWin) {
  const std::map<std::string, std::string> env = {{"SHARDCTL_CACERT", pki_.ca_cert()},
                                                  {"SHARDCTL_CERT", pki_.client_cert()},
                                                  {"SHARDCTL_KEY", pki_.client_key()}};
  RunResult inc = RunShardctl({"inc", "4", "--url", url_}, env);
  EXPECT_EQ(inc.exit_code, 0) << inc.err;

  std::map<std::string, std::string> wrong_ca = env;
  wrong_ca["SHARDCTL_CACERT"] = pki_.other_ca_cert();
  RunResult refused = RunShardctl({"total", "--url", url_}, wrong_ca);
  EXPECT_EQ(refused.exit_code, 3) << refused.err;
  EXPECT_TRUE(Contains(refused.err, "not signed by a trusted CA")) << refused.err;
  RunResult total = RunShardctl({"total", "--url", url_, "--cacert", pki_.ca_cert()}, wrong_ca);
  EXPECT_EQ(total.exit_code, 0) << total.err;
  EXPECT_EQ(total.out, "4\n");
}

TEST_F(TlsCommandsTest, ATlsFailureExits3SayingWhyAndNothingIsCounted) {
  const std::string peer = url_;
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const Case cases[] = {
      {Trusted(), "shardctl: TLS: with " + peer +
                      ": the server requires a client certificate (pass --cert and --key)\n"},
      {With(Trusted(), {"--cert", pki_.other_client_cert(), "--key", pki_.other_client_key()}),
       "shardctl: TLS: with " + peer + ": the server refused our client certificate ("},
      {{"--url", url_, "--cacert", pki_.other_ca_cert(), "--cert", pki_.client_cert(), "--key",
        pki_.client_key()},
       "shardctl: TLS: cannot verify " + peer + ": the certificate is not signed by a trusted CA"},
      {With({"--url", url_}, {"--cert", pki_.client_cert(), "--key", pki_.client_key()}),
       "shardctl: TLS: cannot verify " + peer + ": the certificate is not signed by a trusted CA"},
  };
  for (const Case& c : cases) {
    // Never retried: a certificate refused stays refused.
    RunResult inc = RunShardctl(With({"inc", "1", "--retries", "3"}, c.flags));
    EXPECT_EQ(inc.exit_code, 3) << inc.err;
    EXPECT_TRUE(inc.err.starts_with(c.message)) << inc.err;
    EXPECT_FALSE(Contains(inc.err, "retrying")) << inc.err;
    EXPECT_FALSE(Contains(inc.err, "is 'shardctl serve' running there?")) << inc.err;
  }
  // Every client command says it the same way.
  const std::vector<std::vector<std::string>> commands = {{"total"},
                                                          {"counters"},
                                                          {"status"},
                                                          {"reset", "x", "--yes"},
                                                          {"top", "-n", "1", "--json"},
                                                          {"bench", "-n", "10"}};
  for (const std::vector<std::string>& command : commands) {
    RunResult run = RunShardctl(With(command, Trusted()));
    EXPECT_EQ(run.exit_code, 3) << command[0] << ": " << run.err;
    EXPECT_EQ(run.err, cases[0].message) << command[0];
  }
  RunResult total = RunShardctl(With({"total"}, Accepted()));
  EXPECT_EQ(total.exit_code, 0) << total.err;
  EXPECT_EQ(total.out, "0\n");
}

TEST(TlsServerCertificateTest, AnExpiredCertificateOrAnotherNameIsRefusedSayingSo) {
  const TestPki& pki = Pki();
  Cluster expired({"--tls-cert", pki.expired_cert(), "--tls-key", pki.expired_key()});
  ASSERT_TRUE(expired.ready()) << expired.process().Stderr();
  RunResult old =
      RunShardctl({"total", "--url", "https://" + expired.aggregator(), "--cacert", pki.ca_cert()});
  EXPECT_EQ(old.exit_code, 3);
  EXPECT_EQ(old.err, "shardctl: TLS: cannot verify https://" + expired.aggregator() +
                         ": certificate has expired\n");

  Cluster other({"--tls-cert", pki.wrong_name_cert(), "--tls-key", pki.wrong_name_key()});
  ASSERT_TRUE(other.ready()) << other.process().Stderr();
  RunResult mismatch =
      RunShardctl({"total", "--url", "https://" + other.aggregator(), "--cacert", pki.ca_cert()});
  EXPECT_EQ(mismatch.exit_code, 3);
  EXPECT_EQ(mismatch.err, "shardctl: TLS: cannot verify https://" + other.aggregator() +
                              ": the certificate does not name 127.0.0.1 (name mismatch)\n");

  // A name is checked as a name (and sent as SNI).
  Cluster named({"--tls-cert", pki.server_cert(), "--tls-key", pki.server_key()});
  ASSERT_TRUE(named.ready()) << named.process().Stderr();
  const std::string port = named.aggregator().substr(named.aggregator().rfind(':') + 1);
  RunResult localhost =
      RunShardctl({"total", "--url", "https://localhost:" + port, "--cacert", pki.ca_cert()});
  EXPECT_EQ(localhost.exit_code, 0) << localhost.err;
}

TEST(TlsFilesTest, AFileThatDoesNotLoadIsAUsageErrorNamingIt) {
  const TestPki& pki = Pki();
  TempDir dir;
  const std::string missing = dir.path() + "/missing.pem";
  const std::string url = "https://127.0.0.1:1";
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string named;
  };
  const Case cases[] = {
      {{"total", "--url", url, "--cacert", missing}, {}, missing},
      {{"inc", "1", "--url", url}, {{"SHARDCTL_CACERT", missing}}, missing},
      {{"total", "--url", url, "--cacert", pki.client_key()}, {}, pki.client_key()},
      {{"total", "--url", url, "--cert", pki.client_cert(), "--key", pki.server_key()},
       {},
       pki.server_key()},
      {{"total", "--url", url, "--cert", pki.client_cert()}, {}, "--cert and --key go together"},
      {{"cluster", "status", "--etcd", url, "--cacert", missing}, {}, missing},
      {{"bench", "-n", "1", "--url", url, "--cert", missing, "--key", pki.client_key()},
       {},
       missing},
  };
  for (const Case& c : cases) {
    RunResult run = RunShardctl(c.args, c.env);
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_TRUE(run.err.starts_with("shardctl: error: ")) << run.err;
    EXPECT_TRUE(Contains(run.err, c.named)) << run.err;
  }
}

// A shardctl port without TLS answers a client hello at once (in plain HTTP),
// so the client says the server does not speak TLS rather than wait out its
// timeout; the server goes on serving.
TEST(TlsFilesTest, HttpsToAPlainServerSaysSoAtOnce) {
  Cluster plain;
  ASSERT_TRUE(plain.ready()) << plain.process().Stderr();
  RunResult run =
      RunShardctl({"total", "--url", "https://" + plain.aggregator(), "--timeout", "30"});
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_TRUE(Contains(run.err, "the server does not speak TLS (is it http://?)")) << run.err;
  RunResult curl = RunCommand("curl -sS --max-time 30 https://" + plain.aggregator() + "/total");
  EXPECT_EQ(curl.exit_code, 35) << curl.out;  // CURLE_SSL_CONNECT_ERROR
  EXPECT_TRUE(Contains(curl.out, "wrong version number")) << curl.out;
  RunResult total = RunShardctl({"total", "--url", "http://" + plain.aggregator()});
  EXPECT_EQ(total.exit_code, 0) << total.err;
  EXPECT_EQ(total.out, "0\n");
}

// A server that takes the connection but never answers the hello: the
// handshake's own deadline says so.
TEST(TlsFilesTest, HttpsToAServerThatNeverAnswersSaysSoWithinTheTimeout) {
  HeldPort silent;  // takes connections, never answers
  RunResult run = RunShardctl(
      {"total", "--url", fmt::format("https://127.0.0.1:{}", silent.port()), "--timeout", "1"});
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_TRUE(Contains(run.err,
                       "the TLS handshake did not finish within 1000 ms: does it speak "
                       "plain http://?"))
      << run.err;
}

// The aggregator's hops to its shards go through AsyncHttpClient, in its
// event loops: each connection's handshake is driven there.
TEST(TlsHopsTest, AnAggregatorReachesItsShardsOverMutualTls) {
  const TestPki& pki = Pki();
  std::vector<std::unique_ptr<ServerProcess>> shards;
  std::vector<std::string> shard_flags;
  for (int id = 0; id < 2; ++id) {
    shards.push_back(std::make_unique<ServerProcess>(std::vector<std::string>{
        "serve", "--role", "shard", "--shard-id", std::to_string(id), "--shards", "2", "--port",
        "0", "--in-memory", "--tls-cert", pki.server_cert(), "--tls-key", pki.server_key(),
        "--tls-client-ca", pki.ca_cert()}));
    auto listeners = shards.back()->WaitForListeners(1);
    ASSERT_EQ(listeners.size(), 1u) << shards.back()->Stderr();
    shard_flags.push_back("--shard");
    shard_flags.push_back("https://" + listeners["shard " + std::to_string(id)]);
  }
  // A plain aggregator with a client certificate, and one without.
  ServerProcess aggregator(
      With({"serve", "--role", "aggregator", "--port", "0", "--cacert", pki.ca_cert(), "--cert",
            pki.client_cert(), "--key", pki.client_key()},
           shard_flags));
  auto listeners = aggregator.WaitForListeners(1);
  ASSERT_EQ(listeners.size(), 1u) << aggregator.Stderr();
  const std::string url = "http://" + listeners["aggregator"];
  ServerProcess refused(With(
      {"serve", "--role", "aggregator", "--port", "0", "--cacert", pki.ca_cert()}, shard_flags));
  auto refused_listeners = refused.WaitForListeners(1);
  ASSERT_EQ(refused_listeners.size(), 1u) << refused.Stderr();

  for (const char* value : {"1", "2", "3", "4"}) {
    RunResult inc = RunShardctl({"inc", value, "--url", url});
    EXPECT_EQ(inc.exit_code, 0) << inc.err;
  }
  RunResult bench = RunShardctl({"bench", "-n", "2000", "-c", "8", "--url", url, "--json"});
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  Json report = Json::parse(bench.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << bench.out;
  RunResult total = RunShardctl({"total", "--url", url});
  EXPECT_EQ(total.exit_code, 0) << total.err;
  EXPECT_EQ(total.out, std::to_string(10 + report["sum"].get<int64_t>()) + "\n") << bench.out;

  RunResult without =
      RunShardctl({"inc", "1", "--url", "http://" + refused_listeners["aggregator"]});
  EXPECT_EQ(without.exit_code, 4) << without.err;
  EXPECT_TRUE(Contains(without.err, "TLS: with https://127.0.0.1:")) << without.err;
  EXPECT_TRUE(Contains(without.err, "the server requires a client certificate")) << without.err;
}

// --- etcd over TLS ---------------------------------------------------------------------------

// A single-member etcd (Debian's etcd-server) serving its clients over TLS
// with the test PKI's server certificate, and asking them for certificates
// signed by its CA (--client-cert-auth); ready once constructed.
class TlsEtcd {
 public:
  explicit TlsEtcd(const TestPki& pki)
      : client_port_(HeldPort().port()), peer_port_(HeldPort().port()) {
    ready_ = Start(pki);
    if (!ready_) ADD_FAILURE() << "etcd did not become ready; its log:\n" << Log();
  }
  ~TlsEtcd() {
    if (::testing::Test::HasFailure())
      std::fprintf(stderr, "--- etcd's log ---\n%s\n", Log().c_str());
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (!Reap(pid_, 5s)) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  TlsEtcd(const TlsEtcd&) = delete;
  TlsEtcd& operator=(const TlsEtcd&) = delete;

  bool ready() const { return ready_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(client_port_); }
  std::string Log() const {
    std::ifstream file(dir_.path() + "/etcd.log");
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }

 private:
  bool Start(const TestPki& pki) {
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args = {"etcd",
                                     "--name",
                                     "default",
                                     "--data-dir",
                                     dir_.path() + "/data",
                                     "--listen-client-urls",
                                     url(),
                                     "--advertise-client-urls",
                                     url(),
                                     "--listen-peer-urls",
                                     peer,
                                     "--initial-advertise-peer-urls",
                                     peer,
                                     "--initial-cluster",
                                     "default=" + peer,
                                     "--cert-file",
                                     pki.server_cert(),
                                     "--key-file",
                                     pki.server_key(),
                                     "--trusted-ca-file",
                                     pki.ca_cert(),
                                     "--client-cert-auth"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const std::string log_path = dir_.path() + "/etcd.log";
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // etcd dies with the test
      if (::getppid() != parent) ::_exit(127);
      int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(log, STDOUT_FILENO);
      ::dup2(log, STDERR_FILENO);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    // Ready once GET /health answers through TLS: it has a leader.
    core::Result<net::Url> url = net::ParseUrl(this->url());
    net::HttpClientOptions options =
        Options(ClientContext(pki.ca_cert(), pki.client_cert(), pki.client_key()));
    options.connect_timeout = 1s;
    options.request_timeout = 1s;
    net::HttpClient client(*url, options);
    for (auto deadline = Clock::now() + 30s; Clock::now() < deadline;) {
      core::Result<net::HttpReply> health = client.Get("/health");
      if (health.ok() && health->status == 200 && Contains(health->body, "true")) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // it exited: no use waiting
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(20ms);  // between health checks
    }
    return false;
  }

  TempDir dir_;
  int client_port_;
  int peer_port_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

// Every hop in TLS with client certificates: the cluster commands and a node
// to etcd, the aggregator to etcd and to the node, the client to the
// aggregator.
TEST(EtcdOverTlsTest, AClusterTalksToEtcdAndItsNodesOverMutualTls) {
  const TestPki& pki = Pki();
  TlsEtcd etcd(pki);
  ASSERT_TRUE(etcd.ready());
  const std::vector<std::string> client = {"--etcd",      etcd.url(),      "--cacert",
                                           pki.ca_cert(), "--cert",        pki.client_cert(),
                                           "--key",       pki.client_key()};
  RunResult init = RunShardctl(With({"cluster", "init", "--shards", "2"}, client));
  ASSERT_EQ(init.exit_code, 0) << init.err;

  // serve's own client certificate is its --tls-cert (EKU clientAuth too).
  const std::vector<std::string> serving = {
      "--etcd",         etcd.url(),        "--tls-cert",  pki.server_cert(), "--tls-key",
      pki.server_key(), "--tls-client-ca", pki.ca_cert(), "--cacert",        pki.ca_cert()};
  TempDir data;
  ServerProcess node(With({"serve", "--bind", "127.0.0.11", "--port", "0", "--node-id", "n1",
                           "--data-dir", data.path(), "--lease", "2"},
                          serving));
  auto node_listeners = node.WaitForListeners(1, 20s);
  ASSERT_EQ(node_listeners.size(), 1u) << node.Stderr();
  ServerProcess aggregator(With({"serve", "--role", "aggregator", "--port", "0"}, serving));
  auto listeners = aggregator.WaitForListeners(1, 20s);
  ASSERT_EQ(listeners.size(), 1u) << aggregator.Stderr();
  const std::vector<std::string> to_aggregator = {"--url",    "https://" + listeners["aggregator"],
                                                  "--cacert", pki.ca_cert(),
                                                  "--cert",   pki.client_cert(),
                                                  "--key",    pki.client_key()};

  for (const char* value : {"5", "6"}) {
    RunResult inc = RunShardctl(With({"inc", value}, to_aggregator));
    EXPECT_EQ(inc.exit_code, 0) << inc.err;
  }
  RunResult total = RunShardctl(With({"total"}, to_aggregator));
  EXPECT_EQ(total.exit_code, 0) << total.err;
  EXPECT_EQ(total.out, "11\n");

  RunResult status = RunShardctl(With({"cluster", "status", "--json"}, client));
  EXPECT_EQ(status.exit_code, 0) << status.err;
  Json json = Json::parse(status.out, nullptr, false);
  ASSERT_TRUE(json.is_object()) << status.out;
  ASSERT_EQ(json["nodes"].size(), 1u) << status.out;
  EXPECT_EQ(json["nodes"][0]["address"], "https://" + node_listeners["node"]);
  int64_t counted = 0;  // as the node reported each shard's count, over TLS
  for (const Json& shard : json["shardPlacements"]) {
    EXPECT_TRUE(shard["count"].is_number()) << shard.dump();
    if (shard["count"].is_number()) counted += shard["count"].get<int64_t>();
  }
  EXPECT_EQ(counted, 11) << status.out;
}

TEST(EtcdOverTlsTest, TheStoreReadsWritesAndWatchesOverTls) {
  const TestPki& pki = Pki();
  TlsEtcd etcd(pki);
  ASSERT_TRUE(etcd.ready());
  ASSERT_TRUE(net::SetTlsClientFiles(
                  {.ca = pki.ca_cert(), .cert = pki.client_cert(), .key = pki.client_key()})
                  .ok());
  core::Result<std::unique_ptr<topo::EtcdStore>> store = topo::OpenEtcdStore(etcd.url(), 5s);
  ASSERT_TRUE(store.ok()) << store.status().message();
  core::Result<std::unique_ptr<core::Watch>> watch = (*store)->WatchPrefix("/tls/", 0);
  ASSERT_TRUE(watch.ok()) << watch.status().message();
  core::Result<core::CasResult> put = (*store)->CompareAndSet("/tls/a", 0, "one");
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_TRUE(put->succeeded);
  core::Result<std::optional<core::KeyValue>> got = (*store)->Get("/tls/a");
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, "one");
  std::vector<core::WatchEvent> events;
  for (auto deadline = Clock::now() + 5s; events.empty() && Clock::now() < deadline;) {
    core::Result<std::vector<core::WatchEvent>> next = (*watch)->Next(1s);
    ASSERT_TRUE(next.ok()) << next.status().message();
    events = std::move(*next);
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.key, "/tls/a");
}

TEST(EtcdOverTlsTest, EtcdRefusingUsOrNotTrustedExits3SayingWhy) {
  const TestPki& pki = Pki();
  TlsEtcd etcd(pki);
  ASSERT_TRUE(etcd.ready());
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const Case cases[] = {
      {{"--cacert", pki.ca_cert()},
       "shardctl: TLS: with " + etcd.url() +
           ": the server requires a client certificate (pass --cert and --key)\n"},
      {{"--cacert", pki.ca_cert(), "--cert", pki.other_client_cert(), "--key",
        pki.other_client_key()},
       "shardctl: TLS: with " + etcd.url() + ": the server refused our client certificate"},
      {{"--cacert", pki.other_ca_cert(), "--cert", pki.client_cert(), "--key", pki.client_key()},
       "shardctl: TLS: cannot verify " + etcd.url() +
           ": the certificate is not signed by a trusted CA"},
  };
  for (const Case& c : cases) {
    RunResult init = RunShardctl(With({"cluster", "init", "--etcd", etcd.url()}, c.flags));
    EXPECT_EQ(init.exit_code, 3) << init.err;
    EXPECT_TRUE(init.err.starts_with(c.message)) << init.err;
  }
  // Nothing was made: the first init with the right files makes the cluster.
  RunResult init = RunShardctl({"cluster", "init", "--etcd", etcd.url(), "--cacert", pki.ca_cert(),
                                "--cert", pki.client_cert(), "--key", pki.client_key()});
  EXPECT_EQ(init.exit_code, 0) << init.err;
}

}  // namespace
}  // namespace shardctl::testing
