// The TLS test harness itself: the PKI is what the tests take it for (as
// `openssl verify` and `openssl x509` see it), and TlsTestConnection talks to
// an independent TLS server (`openssl s_server`) and to `shardctl serve`.
#include "tests/integration/tls_harness.h"

#include <signal.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

// `text` as a single-quoted word for sh.
std::string Quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

RunResult Openssl(const std::string& arguments) { return RunCommand("openssl " + arguments); }

const TestPki& Pki() {
  const TestPki& pki = TestPki::Shared();
  EXPECT_TRUE(pki.ok()) << pki.error();
  return pki;
}

TEST(TlsHarnessTest, SharedPkiIsMadeOnceForTheRun) {
  const TestPki& first = Pki();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(&TestPki::Shared(), &first);
  EXPECT_EQ(TestPki::Shared().dir(), first.dir());
  // For the record (the harness's cost per test binary run).
  std::printf("test PKI made in %lld ms\n", static_cast<long long>(first.make_time().count()));
  ::testing::Test::RecordProperty("pki_make_ms", std::to_string(first.make_time().count()));
}

struct VerifyCase {
  std::string name;
  std::string (TestPki::*cert)() const;
  std::string (TestPki::*ca)() const;
  std::string purpose;  // -purpose: sslserver, sslclient
  std::string failure;  // "" if openssl verify accepts it; else what it says
};

TEST(TlsHarnessTest, OpensslVerifiesEachCertificateAsIntended) {
  const TestPki& pki = Pki();
  ASSERT_TRUE(pki.ok());
  const std::string kUnknownCa = "unable to get local issuer certificate";
  const std::vector<VerifyCase> cases = {
      {"ca", &TestPki::ca_cert, &TestPki::ca_cert, "any", ""},
      {"server", &TestPki::server_cert, &TestPki::ca_cert, "sslserver", ""},
      {"server as a client", &TestPki::server_cert, &TestPki::ca_cert, "sslclient", ""},
      {"client", &TestPki::client_cert, &TestPki::ca_cert, "sslclient", ""},
      {"client as a server", &TestPki::client_cert, &TestPki::ca_cert, "sslserver",
       "unsuitable certificate purpose"},
      {"renewed", &TestPki::renewed_cert, &TestPki::ca_cert, "sslserver", ""},
      {"wrong-name", &TestPki::wrong_name_cert, &TestPki::ca_cert, "sslserver", ""},
      {"expired", &TestPki::expired_cert, &TestPki::ca_cert, "sslserver",
       "certificate has expired"},
      {"other-server against ca", &TestPki::other_server_cert, &TestPki::ca_cert, "sslserver",
       kUnknownCa},
      {"other-client against ca", &TestPki::other_client_cert, &TestPki::ca_cert, "sslclient",
       kUnknownCa},
      {"server against other-ca", &TestPki::server_cert, &TestPki::other_ca_cert, "sslserver",
       kUnknownCa},
      {"other-server", &TestPki::other_server_cert, &TestPki::other_ca_cert, "sslserver", ""},
      {"other-client", &TestPki::other_client_cert, &TestPki::other_ca_cert, "sslclient", ""},
  };
  for (const VerifyCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string cert = (pki.*c.cert)();
    RunResult verify = Openssl("verify -purpose " + c.purpose + " -CAfile " + Quote((pki.*c.ca)()) +
                               " " + Quote(cert));
    if (c.failure.empty()) {
      EXPECT_EQ(verify.exit_code, 0) << verify.out;
      EXPECT_EQ(verify.out, cert + ": OK\n");
    } else {
      EXPECT_NE(verify.exit_code, 0) << verify.out;
      EXPECT_NE(verify.out.find(c.failure), std::string::npos) << verify.out;
    }
  }
}

TEST(TlsHarnessTest, CertificatesCarryTheirNamesSerialsAndDates) {
  const TestPki& pki = Pki();
  ASSERT_TRUE(pki.ok());
  struct Expected {
    std::string cert;
    const char* cn;
    const char* serial;
    const char* issuer_cn;
  };
  const std::vector<Expected> expected = {
      {pki.ca_cert(), TestPki::kCaCn, "01", TestPki::kCaCn},
      {pki.server_cert(), TestPki::kServerCn, TestPki::kServerSerial, TestPki::kCaCn},
      {pki.client_cert(), TestPki::kClientCn, TestPki::kClientSerial, TestPki::kCaCn},
      {pki.renewed_cert(), TestPki::kRenewedCn, TestPki::kRenewedSerial, TestPki::kCaCn},
      {pki.wrong_name_cert(), TestPki::kWrongNameCn, TestPki::kWrongNameSerial, TestPki::kCaCn},
      {pki.expired_cert(), TestPki::kExpiredCn, TestPki::kExpiredSerial, TestPki::kCaCn},
      {pki.other_ca_cert(), TestPki::kOtherCaCn, "01", TestPki::kOtherCaCn},
      {pki.other_server_cert(), TestPki::kOtherServerCn, TestPki::kOtherServerSerial,
       TestPki::kOtherCaCn},
      {pki.other_client_cert(), TestPki::kOtherClientCn, TestPki::kOtherClientSerial,
       TestPki::kOtherCaCn},
  };
  for (const Expected& e : expected) {
    SCOPED_TRACE(e.cert);
    PeerCertificate read = ReadCertificate(e.cert);
    EXPECT_EQ(read.cn, e.cn);
    EXPECT_EQ(read.subject, std::string("CN=") + e.cn);
    EXPECT_EQ(read.serial, e.serial);
    EXPECT_EQ(read.issuer, std::string("CN=") + e.issuer_cn);
  }

  // The server certificates name every loopback address a test cluster uses.
  const std::string kServerNames =
      "IP Address:127.0.0.1, IP Address:127.0.0.11, IP Address:127.0.0.12, "
      "IP Address:127.0.0.13, IP Address:127.0.0.14, IP Address:127.0.0.15, "
      "IP Address:127.0.0.16, IP Address:127.0.0.17, IP Address:127.0.0.18, "
      "IP Address:127.0.0.19, DNS:localhost";
  for (const std::string& cert :
       {pki.server_cert(), pki.renewed_cert(), pki.expired_cert(), pki.other_server_cert()}) {
    RunResult names =
        Openssl("x509 -noout -ext subjectAltName,extendedKeyUsage -in " + Quote(cert));
    EXPECT_NE(names.out.find(kServerNames + "\n"), std::string::npos) << cert << ":\n" << names.out;
    EXPECT_NE(names.out.find("TLS Web Server Authentication, TLS Web Client Authentication"),
              std::string::npos)
        << names.out;
  }
  RunResult client =
      Openssl("x509 -noout -ext subjectAltName,extendedKeyUsage -in " + Quote(pki.client_cert()));
  EXPECT_NE(client.out.find("TLS Web Client Authentication\n"), std::string::npos) << client.out;
  EXPECT_EQ(client.out.find("Server Authentication"), std::string::npos) << client.out;
  RunResult wrong = Openssl("x509 -noout -ext subjectAltName -in " + Quote(pki.wrong_name_cert()));
  EXPECT_NE(wrong.out.find("    DNS:other.example\n"), std::string::npos) << wrong.out;
  EXPECT_EQ(wrong.out.find("IP Address"), std::string::npos) << wrong.out;

  RunResult dates = Openssl("x509 -noout -dates -in " + Quote(pki.expired_cert()));
  EXPECT_EQ(dates.out, "notBefore=Jan  1 00:00:00 2020 GMT\nnotAfter=Jan  2 00:00:00 2020 GMT\n");
  // Valid now (within the next day), for ten years.
  for (const std::string& cert : {pki.ca_cert(), pki.server_cert(), pki.renewed_cert()}) {
    EXPECT_EQ(Openssl("x509 -noout -checkend 86400 -in " + Quote(cert)).exit_code, 0) << cert;
  }
}

TEST(TlsHarnessTest, EveryKeyIsP256AndMatchesItsCertificate) {
  const TestPki& pki = Pki();
  ASSERT_TRUE(pki.ok());
  const std::vector<std::string> names = {"ca",       "server",       "client",
                                          "other-ca", "other-server", "other-client",
                                          "expired",  "renewed",      "wrong-name"};
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    std::string key = pki.dir() + "/" + name + ".key";
    std::string cert = pki.dir() + "/" + name + ".pem";
    RunResult text = Openssl("pkey -noout -text -in " + Quote(key));
    EXPECT_EQ(text.exit_code, 0) << text.out;
    EXPECT_NE(text.out.find("NIST CURVE: P-256"), std::string::npos) << text.out;
    RunResult from_key = Openssl("pkey -pubout -in " + Quote(key));
    RunResult from_cert = Openssl("x509 -noout -pubkey -in " + Quote(cert));
    EXPECT_NE(from_key.out.find("BEGIN PUBLIC KEY"), std::string::npos) << from_key.out;
    EXPECT_EQ(from_key.out, from_cert.out);
  }
  // The renewal has a key of its own.
  EXPECT_NE(Openssl("pkey -pubout -in " + Quote(pki.renewed_key())).out,
            Openssl("pkey -pubout -in " + Quote(pki.server_key())).out);
}

TEST(TlsHarnessTest, ConnectionSeesTheCertificateOpensslServerPresents) {
  const TestPki& pki = Pki();
  ASSERT_TRUE(pki.ok());
  OpensslServer server(pki.server_cert(), pki.server_key());
  ASSERT_TRUE(server.ready()) << server.Log();

  TlsTestConnection connection;
  ASSERT_TRUE(connection.Connect(server.port(), pki.ca_cert())) << connection.error();
  EXPECT_EQ(connection.peer().cn, TestPki::kServerCn);
  EXPECT_EQ(connection.peer().serial, TestPki::kServerSerial);
  EXPECT_EQ(connection.peer().issuer, std::string("CN=") + TestPki::kCaCn);
  EXPECT_EQ(connection.version(), "TLSv1.3");
  // s_server -www answers HTTP/1.0 without a length and closes.
  Reply reply = connection.Get("/");
  EXPECT_EQ(reply.status, 200) << connection.error();
  EXPECT_EQ(reply.content_type, "text/html");
  EXPECT_NE(reply.body.find("no client certificate available"), std::string::npos) << reply.body;
  // ... which closes this connection as well.
  EXPECT_FALSE(connection.connected());
  EXPECT_EQ(connection.RoundTrip("GET / HTTP/1.0\r\n\r\n"), "");
  EXPECT_NE(connection.error().find("not connected"), std::string::npos) << connection.error();
  EXPECT_EQ(connection.peer().cn, TestPki::kServerCn);

  // By name, over TLS 1.2, and a one-off look.
  TlsTestConnection by_name;
  EXPECT_TRUE(by_name.Connect(
      server.port(), {.ca = pki.ca_cert(), .server_name = "localhost", .version = "TLSv1.2"}))
      << by_name.error();
  EXPECT_EQ(by_name.version(), "TLSv1.2");
  EXPECT_EQ(by_name.Get("/").status, 200) << by_name.error();
  EXPECT_EQ(PeerCertificateAt(server.port(), {.ca = pki.ca_cert()}).serial, TestPki::kServerSerial);

  server.Stop();
  EXPECT_FALSE(server.ready());
  TlsTestConnection after_stop;
  EXPECT_FALSE(after_stop.Connect(server.port(), pki.ca_cert()));
}

struct RefusalCase {
  std::string name;
  std::string (TestPki::*cert)() const;
  std::string (TestPki::*key)() const;
  std::string server_name;  // "": 127.0.0.1
  std::string failure;      // what error() says
};

TEST(TlsHarnessTest, ConnectionRefusesTheCertificatesItShould) {
  const TestPki& pki = Pki();
  ASSERT_TRUE(pki.ok());
  const std::vector<RefusalCase> cases = {
      {"expired", &TestPki::expired_cert, &TestPki::expired_key, "",
       "certificate verify failed: certificate has expired"},
      {"another CA", &TestPki::other_server_cert, &TestPki::other_server_key, "",
       "certificate verify failed: unable to get local issuer certificate"},
      {"wrong name", &TestPki::wrong_name_cert, &TestPki::wrong_name_key, "",
       "certificate verify failed: IP address mismatch"},
      {"wrong name by name", &TestPki::wrong_name_cert, &TestPki::wrong_name_key, "localhost",
       "certificate verify failed: hostname mismatch"},
  };
  for (const RefusalCase& c : cases) {
    SCOPED_TRACE(c.name);
    OpensslServer server((pki.*c.cert)(), (pki.*c.key)());
    ASSERT_TRUE(server.ready()) << server.Log();
    TlsTestConnection connection;
    EXPECT_FALSE(
        connection.Connect(server.port(), {.ca = pki.ca_cert(), .server_name = c.server_name}));
    EXPECT_FALSE(connection.connected());
    EXPECT_NE(connection.error().find(c.failure), std::string::npos) << connection.error();
    // Without verification, what the server presents.
    std::string error;
    EXPECT_EQ(PeerCertificateAt(server.port(), {.verify = false}, &error).cn,
              ReadCertificate((pki.*c.cert)()).cn)
        << error;
  }
  // The wrong-name certificate is right for its own name.
  OpensslServer server(pki.wrong_name_cert(), pki.wrong_name_key());
  ASSERT_TRUE(server.ready()) << server.Log();
  TlsTestConnection connection;
  EXPECT_TRUE(
      connection.Connect(server.port(), {.ca = pki.ca_cert(), .server_name = "other.example"}))
      << connection.error();
}

TEST(TlsHarnessTest, ConnectionPresentsItsClientCertificate) {
  const TestPki& pki = Pki();
  ASSERT_TRUE(pki.ok());
  OpensslServer server(pki.server_cert(), pki.server_key(), pki.ca_cert());
  ASSERT_TRUE(server.ready()) << server.Log();

  TlsTestConnection with_cert;
  ASSERT_TRUE(with_cert.Connect(server.port(), pki.ca_cert(), pki.client_cert(), pki.client_key()))
      << with_cert.error();
  Reply reply = with_cert.Get("/");
  EXPECT_EQ(reply.status, 200) << with_cert.error();
  EXPECT_NE(reply.body.find("Subject: CN=shardctl-client"), std::string::npos) << reply.body;

  // TLS 1.3: the server refuses after the handshake, at the first read.
  TlsTestConnection without;
  ASSERT_TRUE(without.Connect(server.port(), pki.ca_cert())) << without.error();
  EXPECT_EQ(without.Get("/").status, 0);
  EXPECT_NE(without.error().find("tlsv13 alert certificate required"), std::string::npos)
      << without.error();
  // TLS 1.2: in the handshake.
  TlsTestConnection without_12;
  EXPECT_FALSE(without_12.Connect(server.port(), {.ca = pki.ca_cert(), .version = "TLSv1.2"}));
  EXPECT_NE(without_12.error().find("handshake: "), std::string::npos) << without_12.error();

  TlsTestConnection other;
  ASSERT_TRUE(
      other.Connect(server.port(), pki.ca_cert(), pki.other_client_cert(), pki.other_client_key()))
      << other.error();
  EXPECT_EQ(other.Get("/").status, 0);
  EXPECT_NE(other.error().find("alert unknown ca"), std::string::npos) << other.error();
}

// The harness's purpose: a connection to shardctl serve over TLS that stays
// open, with requests on it before and after the server reloads a renewed
// certificate, while new connections see the renewal.
TEST(TlsHarnessTest, ConnectionKeepsItsSessionAcrossAServeReload) {
  const TestPki& pki = Pki();
  ASSERT_TRUE(pki.ok());
  TempDir dir;
  const std::string cert = dir.path() + "/tls.pem";
  const std::string key = dir.path() + "/tls.key";
  ASSERT_TRUE(InstallFile(pki.server_cert(), cert));
  ASSERT_TRUE(InstallFile(pki.server_key(), key));
  Cluster cluster({"--in-memory", "--tls-cert", cert, "--tls-key", key}, 1);
  ASSERT_TRUE(cluster.ready());
  const int port = std::stoi(cluster.aggregator().substr(cluster.aggregator().rfind(':') + 1));

  TlsTestConnection kept;
  ASSERT_TRUE(kept.Connect(port, pki.ca_cert())) << kept.error();
  EXPECT_EQ(kept.peer().serial, TestPki::kServerSerial);
  EXPECT_EQ(kept.Post("/increment", R"({"value":2})").status, 200) << kept.error();
  EXPECT_EQ(kept.Post("/increment", R"({"value":3})").status, 200) << kept.error();

  ASSERT_TRUE(InstallFile(pki.renewed_cert(), cert));
  ASSERT_TRUE(InstallFile(pki.renewed_key(), key));
  cluster.process().Signal(SIGHUP);
  // The reload is done once a new connection sees the renewed certificate
  // (bounded: 10 s, a new connection every 20 ms at most).
  PeerCertificate fresh;
  std::string error;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    fresh = PeerCertificateAt(port, {.ca = pki.ca_cert()}, &error);
    if (fresh.serial == TestPki::kRenewedSerial) break;
    std::this_thread::sleep_for(20ms);  // polling: a reload has no event to wait on
  }
  EXPECT_EQ(fresh.cn, TestPki::kRenewedCn) << error << "\n" << cluster.process().Stderr();

  Reply total = kept.Get("/total");
  EXPECT_EQ(total.status, 200) << kept.error();
  EXPECT_EQ(total.body, R"({"total":5})");
  EXPECT_EQ(kept.peer().serial, TestPki::kServerSerial);  // as it was at its handshake
}

}  // namespace
}  // namespace shardctl::testing
