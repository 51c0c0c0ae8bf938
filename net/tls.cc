#include "net/tls.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <utility>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/socket_io.h"

namespace shardctl::net {
namespace {

// The newest OpenSSL error in words ("no such file", "key values mismatch"),
// and the queue cleared.
std::string LastOpenSslError() {
  unsigned long error = ERR_peek_last_error();
  ERR_clear_error();
  if (error == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(error);
  return reason != nullptr ? reason : fmt::format("OpenSSL error {:#x}", error);
}

// Checks that `path` can be read, so that a missing file is named as such
// rather than as an OpenSSL parse error.
core::Status Readable(const std::string& path, std::string_view what) {
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) {
    return core::InvalidArgument(fmt::format("cannot read {} {}: {}", what, path,
                                             std::strerror(errno)));
  }
  std::fclose(file);
  return core::Status();
}

// The settings every context shares: TLS 1.2 at least, no renegotiation, no
// session tickets or cache (each client process connects once, and tickets
// cost an extra write per handshake), partial writes from a buffer that may
// move, and buffers freed while a connection is idle.
void CommonSettings(SSL_CTX* context) {
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                   SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_num_tickets(context, 0);
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                SSL_MODE_RELEASE_BUFFERS);
  // One read() takes what the socket holds rather than a record's header and
  // then its body: half the reads per request. What it takes beyond a record
  // waits in the session (HasBuffered).
  SSL_CTX_set_read_ahead(context, 1);
}

core::Status LoadCertificateAndKey(SSL_CTX* context, const std::string& cert,
                                   const std::string& key) {
  if (core::Status readable = Readable(cert, "the certificate"); !readable.ok()) return readable;
  if (core::Status readable = Readable(key, "the private key"); !readable.ok()) return readable;
  if (SSL_CTX_use_certificate_chain_file(context, cert.c_str()) != 1) {
    return core::InvalidArgument(
        fmt::format("{} holds no PEM certificate: {}", cert, LastOpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(context, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return core::InvalidArgument(
        fmt::format("{} holds no PEM private key: {}", key, LastOpenSslError()));
  }
  if (SSL_CTX_check_private_key(context) != 1) {
    ERR_clear_error();
    return core::InvalidArgument(
        fmt::format("{} is not the private key of the certificate in {}", key, cert));
  }
  return core::Status();
}

core::Status LoadTrusted(SSL_CTX* context, const std::string& ca) {
  if (core::Status readable = Readable(ca, "the CA file"); !readable.ok()) return readable;
  if (SSL_CTX_load_verify_locations(context, ca.c_str(), nullptr) != 1) {
    return core::InvalidArgument(
        fmt::format("{} holds no PEM CA certificate: {}", ca, LastOpenSslError()));
  }
  return core::Status();
}

// "CN=node1, expires Dec  1 12:00:00 2027 GMT", from the context's certificate.
std::string Describe(SSL_CTX* context) {
  X509* certificate = SSL_CTX_get0_certificate(context);
  if (certificate == nullptr) return "";
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253);
  BIO_puts(bio, ", expires ");
  ASN1_TIME_print(bio, X509_get0_notAfter(certificate));
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<size_t>(length));
  BIO_free(bio);
  return text;
}

struct ContextDeleter {
  void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
};
using OwnedContext = std::unique_ptr<SSL_CTX, ContextDeleter>;

bool IsIpAddress(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

// Why the peer's certificate failed verification, in words.
std::string VerifyFailure(long result, const std::string& host) {
  switch (result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "certificate has expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "certificate is not yet valid";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return "the certificate is not signed by a trusted CA (unknown CA: pass --cacert)";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return fmt::format("the certificate does not name {} (name mismatch)", host);
    case X509_V_ERR_INVALID_PURPOSE:
      return "the certificate is not for this use (its extended key usage)";
    default:
      return X509_verify_cert_error_string(result);
  }
}

// OpenSSL's socket BIO writes with write(2), which raises SIGPIPE on a
// connection the peer has reset: that kills a client command (only serve
// ignores the signal) when it sends a request, or a close_notify, on a
// connection the server dropped. This BIO is the socket BIO with its writes
// made by send(MSG_NOSIGNAL), failing with EPIPE instead.
int SendWithoutSignal(BIO* bio, const char* data, int size) {
  int fd = -1;
  BIO_get_fd(bio, &fd);
  errno = 0;
  auto sent = static_cast<int>(::send(fd, data, static_cast<size_t>(size), MSG_NOSIGNAL));
  BIO_clear_retry_flags(bio);
  if (sent <= 0 && BIO_sock_should_retry(sent)) BIO_set_retry_write(bio);
  return sent;
}

const BIO_METHOD* SocketWithoutSignal() {
  static BIO_METHOD* const method = [] {
    const BIO_METHOD* socket = BIO_s_socket();
    BIO_METHOD* made = BIO_meth_new(BIO_TYPE_SOCKET, "socket without SIGPIPE");
    BIO_meth_set_write(made, SendWithoutSignal);
    BIO_meth_set_read(made, BIO_meth_get_read(socket));
    BIO_meth_set_puts(made, BIO_meth_get_puts(socket));
    BIO_meth_set_ctrl(made, BIO_meth_get_ctrl(socket));
    BIO_meth_set_create(made, BIO_meth_get_create(socket));
    BIO_meth_set_destroy(made, BIO_meth_get_destroy(socket));
    return made;
  }();
  return method;
}

// Puts `ssl` over `fd` as SSL_set_fd does, through SocketWithoutSignal().
bool SetSocket(SSL* ssl, int fd) {
  BIO* bio = BIO_new(SocketWithoutSignal());
  if (bio == nullptr) return false;
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  SSL_set_bio(ssl, bio, bio);  // one reference for both directions
  return true;
}

std::mutex client_mutex;
std::shared_ptr<const TlsContext> client_context;  // guarded by client_mutex

}  // namespace

core::Result<std::shared_ptr<const TlsContext>> TlsContext::ForServer(const TlsServerFiles& files) {
  OwnedContext context(SSL_CTX_new(TLS_server_method()));
  if (!context) return core::Internal("cannot make a TLS context: " + LastOpenSslError());
  CommonSettings(context.get());
  if (core::Status loaded = LoadCertificateAndKey(context.get(), files.cert, files.key);
      !loaded.ok()) {
    return loaded;
  }
  if (!files.client_ca.empty()) {
    if (core::Status loaded = LoadTrusted(context.get(), files.client_ca); !loaded.ok()) {
      return loaded;
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(context.get(), names);
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  ERR_clear_error();
  std::string description = Describe(context.get());
  return std::shared_ptr<const TlsContext>(new TlsContext(context.release(), std::move(description)));
}

core::Result<std::shared_ptr<const TlsContext>> TlsContext::ForClient(const TlsClientFiles& files) {
  OwnedContext context(SSL_CTX_new(TLS_client_method()));
  if (!context) return core::Internal("cannot make a TLS context: " + LastOpenSslError());
  CommonSettings(context.get());
  SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
  if (files.ca.empty()) {
    SSL_CTX_set_default_verify_paths(context.get());
  } else if (core::Status loaded = LoadTrusted(context.get(), files.ca); !loaded.ok()) {
    return loaded;
  }
  if (files.cert.empty() != files.key.empty()) {
    return core::InvalidArgument("a client certificate needs both its file and its key's");
  }
  if (!files.cert.empty()) {
    if (core::Status loaded = LoadCertificateAndKey(context.get(), files.cert, files.key);
        !loaded.ok()) {
      return loaded;
    }
  }
  ERR_clear_error();
  std::string description = Describe(context.get());
  return std::shared_ptr<const TlsContext>(new TlsContext(context.release(), std::move(description)));
}

TlsContext::~TlsContext() { SSL_CTX_free(context_); }

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context, ssl_st* ssl, bool client,
                       std::string host)
    : context_(std::move(context)), ssl_(ssl), client_(client), host_(std::move(host)) {}

TlsSession::~TlsSession() { SSL_free(ssl_); }

std::unique_ptr<TlsSession> TlsSession::Accept(std::shared_ptr<const TlsContext> context, int fd) {
  SSL* ssl = SSL_new(context->get());
  if (ssl == nullptr) return nullptr;
  if (!SetSocket(ssl, fd)) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return std::unique_ptr<TlsSession>(new TlsSession(std::move(context), ssl, false, ""));
}

std::unique_ptr<TlsSession> TlsSession::Connect(std::shared_ptr<const TlsContext> context, int fd,
                                                const std::string& host) {
  SSL* ssl = SSL_new(context->get());
  if (ssl == nullptr) return nullptr;
  if (!SetSocket(ssl, fd)) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_connect_state(ssl);
  if (IsIpAddress(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
  }
  return std::unique_ptr<TlsSession>(new TlsSession(std::move(context), ssl, true, host));
}

TlsIo TlsSession::Outcome(int ret) {
  int error = SSL_get_error(ssl_, ret);
  switch (error) {
    case SSL_ERROR_WANT_READ:
      return TlsIo::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return TlsIo::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      ERR_clear_error();
      return TlsIo::kClosed;
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      if (!handshake_done_) {
        why_ = errno != 0 ? std::strerror(errno) : "the peer closed the connection";
        return TlsIo::kFailed;
      }
      return TlsIo::kClosed;
    default:
      break;
  }
  verify_failed_ = false;
  plain_http_ = false;
  long verified = SSL_get_verify_result(ssl_);
  if (client_ && verified != X509_V_OK) {
    ERR_clear_error();
    verify_failed_ = true;
    why_ = VerifyFailure(verified, host_);
    return TlsIo::kFailed;
  }
  unsigned long last = ERR_peek_last_error();
  int reason = ERR_GET_REASON(last);
  std::string said = LastOpenSslError();
  if (reason == SSL_R_HTTP_REQUEST) {
    plain_http_ = true;
    why_ = "a plain HTTP request came to a TLS port";
  } else if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG) {
    why_ = client_ ? "the server does not speak TLS (is it http://?)"
                   : "the client does not speak TLS";
  } else if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
             reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    why_ = client_ ? "the server requires a client certificate (pass --cert and --key)"
                   : "the client sent no certificate";
  } else if (client_ && (reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
                         reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
                         reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED ||
                         reason == SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE ||
                         reason == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN)) {
    // Go's TLS (etcd) says bad_certificate, not certificate_required, when
    // a client sends none.
    why_ = SSL_get_certificate(ssl_) == nullptr
               ? "the server requires a client certificate (pass --cert and --key)"
               : fmt::format("the server refused our client certificate ({})", said);
  } else if (!client_ && verified != X509_V_OK) {
    why_ = fmt::format("the client's certificate: {}", VerifyFailure(verified, ""));
  } else {
    why_ = said;
  }
  return TlsIo::kFailed;
}

TlsIo TlsSession::Handshake() {
  if (handshake_done_) return TlsIo::kDone;
  ERR_clear_error();
  errno = 0;
  int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    handshake_done_ = true;
    return TlsIo::kDone;
  }
  return Outcome(ret);
}

TlsIo TlsSession::Read(char* data, size_t size, size_t* moved) {
  *moved = 0;
  ERR_clear_error();
  errno = 0;
  int ret = SSL_read_ex(ssl_, data, size, moved);
  if (ret == 1) {
    handshake_done_ = true;
    return TlsIo::kDone;
  }
  return Outcome(ret);
}

TlsIo TlsSession::Write(const char* data, size_t size, size_t* moved) {
  *moved = 0;
  ERR_clear_error();
  errno = 0;
  int ret = SSL_write_ex(ssl_, data, size, moved);
  if (ret == 1) {
    handshake_done_ = true;
    return TlsIo::kDone;
  }
  return Outcome(ret);
}

bool TlsSession::HasBuffered() const { return SSL_has_pending(ssl_) == 1; }

void TlsSession::Shutdown() {
  if (!handshake_done_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

core::Status TlsSession::Failure(const std::string& peer) const {
  if (verify_failed_) return core::Unavailable(fmt::format("TLS: cannot verify {}: {}", peer, why_));
  return core::Unavailable(fmt::format("TLS: with {}: {}", peer, why_));
}

core::Status HandshakeBefore(TlsSession& session, int fd,
                             std::chrono::steady_clock::time_point deadline,
                             const std::string& peer) {
  for (;;) {
    switch (session.Handshake()) {
      case TlsIo::kDone:
        return core::Status();
      case TlsIo::kWantRead:
        if (!Await(fd, POLLIN, deadline)) {
          return {core::Code::kTimeout, fmt::format("TLS: the handshake with {} timed out", peer)};
        }
        break;
      case TlsIo::kWantWrite:
        if (!Await(fd, POLLOUT, deadline)) {
          return {core::Code::kTimeout, fmt::format("TLS: the handshake with {} timed out", peer)};
        }
        break;
      case TlsIo::kClosed:  // a close_notify in the handshake: no why() to tell
        return core::Unavailable(
            fmt::format("TLS: with {}: the peer closed the connection in the handshake", peer));
      case TlsIo::kFailed:
        return session.Failure(peer);
    }
  }
}

core::Status SetTlsClientFiles(const TlsClientFiles& files) {
  core::Result<std::shared_ptr<const TlsContext>> made = TlsContext::ForClient(files);
  if (!made.ok()) return made.status();
  std::lock_guard lock(client_mutex);
  client_context = std::move(*made);
  return core::Status();
}

core::Result<std::shared_ptr<const TlsContext>> TlsClientContext() {
  std::lock_guard lock(client_mutex);
  if (!client_context) {
    core::Result<std::shared_ptr<const TlsContext>> made = TlsContext::ForClient({});
    if (!made.ok()) return made.status();
    client_context = std::move(*made);
  }
  return client_context;
}

}  // namespace shardctl::net
