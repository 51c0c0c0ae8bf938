// TLS for the integration tests: a throwaway PKI made with the `openssl` CLI
// (TestPki), a TLS client that holds one connection open and reports what the
// server presented (TlsTestConnection), and `openssl s_server` as an
// independent TLS server (OpensslServer). Not thread-safe: each test owns its
// connections and servers; TestPki::Shared() may be called from any thread.
#ifndef SHARDCTL_TESTS_INTEGRATION_TLS_HARNESS_H_
#define SHARDCTL_TESTS_INTEGRATION_TLS_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

struct ssl_ctx_st;
struct ssl_st;

namespace shardctl::testing {

// A CA and certificates signed by it, in a temporary directory, every key EC
// P-256. File names are those of the accessors (ca.pem, server.pem,
// server.key, ...). Every certificate but the expired one is valid from its
// making for ten years. Serial numbers are fixed (kServerSerial, ...), so a
// test can tell which certificate a server presents.
class TestPki {
 public:
  // Subjects' common names.
  static constexpr const char* kCaCn = "shardctl-test-ca";
  static constexpr const char* kServerCn = "shardctl-server";
  static constexpr const char* kClientCn = "shardctl-client";
  static constexpr const char* kOtherCaCn = "shardctl-other-test-ca";
  static constexpr const char* kOtherServerCn = "shardctl-other-server";
  static constexpr const char* kOtherClientCn = "shardctl-other-client";
  static constexpr const char* kExpiredCn = "shardctl-server-expired";
  static constexpr const char* kRenewedCn = "shardctl-server-renewed";
  static constexpr const char* kWrongNameCn = "other.example";
  // Serial numbers in upper-case hexadecimal, as PeerCertificate::serial.
  static constexpr const char* kServerSerial = "1001";
  static constexpr const char* kClientSerial = "1002";
  static constexpr const char* kRenewedSerial = "1003";
  static constexpr const char* kWrongNameSerial = "1004";
  static constexpr const char* kExpiredSerial = "1005";
  static constexpr const char* kOtherServerSerial = "2001";
  static constexpr const char* kOtherClientSerial = "2002";
  // What the server certificates (server, renewed, expired, other-server)
  // name in their subjectAltName.
  static std::vector<std::string> ServerNames();  // "IP:127.0.0.1", ..., "DNS:localhost"

  // Makes every file with `openssl` (11 runs of it, about 0.1 s on 2 cores:
  // see make_time()).
  // If a run fails: ADD_FAILURE with its command and output, and ok() is
  // false.
  TestPki();
  // The PKI shared by every test in this run of the test binary: made on the
  // first call, removed at exit. Its files must stay as they are: a test that
  // rewrites a certificate (a renewal) works on copies (InstallFile).
  static const TestPki& Shared();

  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  bool ok() const { return error_.empty(); }
  // Empty, or the command that failed and what openssl said.
  const std::string& error() const { return error_; }
  // How long making it took.
  std::chrono::milliseconds make_time() const { return make_time_; }
  const std::string& dir() const { return dir_.path(); }

  // The trusted CA (self-signed).
  std::string ca_cert() const { return File("ca.pem"); }
  // CN=shardctl-server, SAN ServerNames(), EKU serverAuth and clientAuth.
  std::string server_cert() const { return File("server.pem"); }
  std::string server_key() const { return File("server.key"); }
  // CN=shardctl-client, EKU clientAuth only.
  std::string client_cert() const { return File("client.pem"); }
  std::string client_key() const { return File("client.key"); }
  // A second CA that nothing trusts, with a server certificate (as
  // server.pem's) and a client certificate (as client.pem's) of its own.
  std::string other_ca_cert() const { return File("other-ca.pem"); }
  std::string other_server_cert() const { return File("other-server.pem"); }
  std::string other_server_key() const { return File("other-server.key"); }
  std::string other_client_cert() const { return File("other-client.pem"); }
  std::string other_client_key() const { return File("other-client.key"); }
  // As server.pem, but valid only from 2020-01-01 to 2020-01-02 (UTC).
  std::string expired_cert() const { return File("expired.pem"); }
  std::string expired_key() const { return File("expired.key"); }
  // As server.pem (same names and uses), with another key, serial and CN.
  std::string renewed_cert() const { return File("renewed.pem"); }
  std::string renewed_key() const { return File("renewed.key"); }
  // Signed by the CA for DNS:other.example only (CN=other.example).
  std::string wrong_name_cert() const { return File("wrong-name.pem"); }
  std::string wrong_name_key() const { return File("wrong-name.key"); }

 private:
  std::string File(const char* name) const { return dir_.path() + "/" + name; }
  // Runs openssl with `args` in dir(); on failure records it in error_.
  bool Openssl(const std::vector<std::string>& args);

  TempDir dir_;
  std::string error_;
  std::chrono::milliseconds make_time_{0};
};

// Copies `from` over `to` atomically (a new file renamed over `to`), as a
// renewal (certbot, cert-manager) replaces a certificate. Returns false (and
// ADD_FAILURE) if it cannot.
bool InstallFile(const std::string& from, const std::string& to);

// A certificate as a peer sees it.
struct PeerCertificate {
  std::string subject;  // RFC 2253, e.g. "CN=shardctl-server"
  std::string cn;       // the subject's common name
  std::string serial;   // upper-case hexadecimal, e.g. "1001"
  std::string issuer;   // RFC 2253
};

// The certificate in the PEM file `path` (its first), or an empty one
// (ADD_FAILURE) if it cannot be read.
PeerCertificate ReadCertificate(const std::string& path);

// How a TlsTestConnection connects. (The `{}` initializers let designated
// initializers leave members out without g++ 12's -Wmissing-field-initializers.)
struct TlsClientOptions {
  std::string ca{};    // PEM: the CA to trust (required unless !verify)
  std::string cert{};  // PEM: a client certificate to present; empty: none
  std::string key{};   // PEM: its key
  // The address connected to (any of 127.0.0.0/8).
  std::string host = "127.0.0.1";
  // The name the certificate must carry, sent as SNI when it is a DNS name;
  // empty: `host`, an IP address.
  std::string server_name{};
  // False: any certificate is accepted (to look at what a server presents).
  bool verify = true;
  // "TLSv1.2" or "TLSv1.3": only that version; empty: TLS 1.2 or later.
  std::string version{};
  // Bounds every call: connect and handshake, and each request.
  std::chrono::milliseconds timeout = std::chrono::seconds(5);
};

// One TLS connection made with OpenSSL's C API, independently of shardctl's
// net/tls: the handshake, raw HTTP/1.1 requests one answer at a time (the
// connection stays open in between, across a server's reload), and the
// certificate the server presented.
class TlsTestConnection {
 public:
  TlsTestConnection() = default;
  ~TlsTestConnection();
  TlsTestConnection(const TlsTestConnection&) = delete;
  TlsTestConnection& operator=(const TlsTestConnection&) = delete;

  // Connects to `options.host`:`port` and completes the handshake, checking
  // the server's certificate against options.ca and its name when
  // options.verify. Returns true on success; false with error() saying why,
  // in OpenSSL's words ("certificate verify failed: certificate has
  // expired", "... IP address mismatch", "... unable to get local issuer
  // certificate", "tlsv1 alert unknown ca"). With TLS 1.3 a server that
  // refuses the client's certificate (or its absence) says so only after the
  // handshake: the first Request fails ("tlsv13 alert certificate
  // required"). A connection already open is closed first.
  bool Connect(int port, const TlsClientOptions& options);
  // Connect(port, {.ca = ca, .cert = cert, .key = key}).
  bool Connect(int port, const std::string& ca, const std::string& cert = "",
               const std::string& key = "");

  bool connected() const { return ssl_ != nullptr; }
  const std::string& error() const { return error_; }
  // The server's certificate (as it was at the handshake).
  // REQUIRES: Connect returned true.
  const PeerCertificate& peer() const { return peer_; }
  // The negotiated version: "TLSv1.2", "TLSv1.3".
  std::string version() const;

  // Sends `request` as it is and reads one HTTP answer: its head, then a
  // body of Content-Length bytes, or chunked up to the last chunk, or up to
  // the end of the connection if it has neither. Returns the answer as it
  // came (head and body), or "" with error() saying why (closed by the
  // server, timed out, a TLS alert). Bytes after the answer wait for the
  // next call. Once the server has closed the connection (an answer without
  // a length, too) or a call failed, the connection is closed: connected()
  // is false, peer() stays.
  std::string RoundTrip(const std::string& request);
  // A keep-alive GET or POST (Content-Type: application/json) of `path`,
  // through RoundTrip. Reply::status is 0 if no answer came.
  Reply Get(const std::string& path);
  Reply Post(const std::string& path, const std::string& body);

  // Sends close_notify (unless the connection failed) and closes the socket.
  // Idempotent.
  void Close();

 private:
  // Runs `op` (an SSL call on ssl_) until it succeeds, waiting on the socket
  // for what it asks, until `deadline`. Returns its result (> 0 on success),
  // or <= 0 with error_ set.
  template <typename Op>
  int Drive(Op op, std::chrono::steady_clock::time_point deadline, const char* what);
  // Reads more bytes into buffer_; false at the end or on error (error_).
  bool ReadMore(std::chrono::steady_clock::time_point deadline);
  std::string Fail(const std::string& why);

  ssl_ctx_st* context_ = nullptr;
  ssl_st* ssl_ = nullptr;
  int fd_ = -1;
  std::string host_;
  bool verify_ = true;
  std::chrono::milliseconds timeout_{0};
  std::string buffer_;   // received, not yet returned
  bool failed_ = false;  // a fatal error: no close_notify
  std::string error_;
  PeerCertificate peer_;
};

// The certificate the TLS server on `options.host`:`port` presents (connects,
// reads it, closes). Empty (cn == "") with `*error` set when the handshake
// fails.
PeerCertificate PeerCertificateAt(int port, const TlsClientOptions& options,
                                  std::string* error = nullptr);

// `openssl s_server -www` on 127.0.0.1 and a port the kernel picks: an
// independent TLS server. It answers "GET / HTTP/1.0" with a status page
// (which names the client's certificate, if any) and closes the connection.
// Stopped when destroyed.
class OpensslServer {
 public:
  // Serves `cert` and `key`; with `client_ca`, asks for a client certificate
  // signed by it and refuses a connection without one, or with another
  // (-Verify 1 -verify_return_error). `extra` goes on its command line.
  // Waits for its "ACCEPT 127.0.0.1:PORT" line; ADD_FAILURE (with its
  // output) if it has not printed it within 10 s. It serves one connection
  // at a time: close one (TlsTestConnection does once it has read to the
  // end) before the next can be served.
  OpensslServer(const std::string& cert, const std::string& key, const std::string& client_ca = "",
                const std::vector<std::string>& extra = {});
  ~OpensslServer();
  OpensslServer(const OpensslServer&) = delete;
  OpensslServer& operator=(const OpensslServer&) = delete;

  bool ready() const { return port_ > 0; }
  int port() const { return port_; }
  // SIGTERM, then SIGKILL if it still runs after 5 s. Idempotent.
  void Stop();
  // Everything it printed.
  std::string Log() const;

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
};

}  // namespace shardctl::testing

#endif  // SHARDCTL_TESTS_INTEGRATION_TLS_HARNESS_H_
