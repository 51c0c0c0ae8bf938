// TLS for shardctl's connections, with Debian's OpenSSL 3: contexts loaded
// from PEM files, and sessions driven over non-blocking sockets, so that the
// server's event loops and the clients keep their shape (a call that would
// block says which readiness it waits for, and the caller waits as it waits
// for a plain socket).
//
// TlsContext is immutable once made and safe to share between threads; a
// session keeps its context alive, so a server can swap in a new one (a
// certificate renewed, SIGHUP) while open connections keep theirs.
// TlsSession is for one thread at a time.
#ifndef SHARDCTL_NET_TLS_H_
#define SHARDCTL_NET_TLS_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "core/status.h"

struct ssl_ctx_st;
struct ssl_st;

namespace shardctl::net {

// What a server presents, and whom it lets in.
struct TlsServerFiles {
  std::string cert;       // PEM: the certificate, then any intermediate ones
  std::string key;        // PEM: its private key
  std::string client_ca;  // PEM: when set, clients must present a certificate it signed
};

// What a client trusts, and what it presents to servers that ask.
struct TlsClientFiles {
  std::string ca;    // PEM: the CAs trusted to sign servers' certificates; empty: the system's
  std::string cert;  // PEM: a client certificate; empty: none
  std::string key;   // PEM: its private key
};

class TlsContext {
 public:
  // Loads the files and checks that the key matches the certificate.
  // Returns kInvalidArgument naming the file and what is wrong with it.
  static core::Result<std::shared_ptr<const TlsContext>> ForServer(const TlsServerFiles& files);
  static core::Result<std::shared_ptr<const TlsContext>> ForClient(const TlsClientFiles& files);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // For a server: its certificate's subject and expiry, for the log
  // ("CN=node1, expires 2027-12-01").
  const std::string& description() const { return description_; }
  ssl_ctx_st* get() const { return context_; }

 private:
  TlsContext(ssl_ctx_st* context, std::string description)
      : context_(context), description_(std::move(description)) {}
  ssl_ctx_st* context_;
  std::string description_;
};

// What a session's call did.
enum class TlsIo {
  kDone,       // done (a Read or Write moved bytes)
  kWantRead,   // call again once the socket is readable
  kWantWrite,  // call again once the socket is writable
  kClosed,     // the peer closed the connection (cleanly or not)
  kFailed,     // the handshake or the connection failed: see Why()
};

class TlsSession {
 public:
  // A server's side of connection `fd` (connected, non-blocking, outliving
  // the session).
  static std::unique_ptr<TlsSession> Accept(std::shared_ptr<const TlsContext> context, int fd);
  // A client's side, checking that the server's certificate names `host`
  // (a DNS name or an IP address) and sending it as SNI when it is a name.
  static std::unique_ptr<TlsSession> Connect(std::shared_ptr<const TlsContext> context, int fd,
                                             const std::string& host);

  ~TlsSession();  // frees the session; the descriptor stays open
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Goes on with the handshake: kDone once it has finished.
  TlsIo Handshake();
  bool handshake_done() const { return handshake_done_; }
  // Reads up to `size` bytes of data into `data` (the handshake first, if
  // not done), `*moved` how many: kDone with at least one.
  TlsIo Read(char* data, size_t size, size_t* moved);
  // Writes up to `size` bytes of `data`, `*moved` how many: kDone with at
  // least one. Data not all written is offered again from where it stopped
  // (the buffer may have moved meanwhile).
  TlsIo Write(const char* data, size_t size, size_t* moved);
  // True if data the session read from the socket waits to be read, whether
  // decrypted yet or not (no socket event will say so).
  bool HasBuffered() const;
  // Sends close_notify if it can without waiting. No I/O after this.
  void Shutdown();

  // Why the last call gave kFailed, in words for a person: "certificate has
  // expired", "the certificate is not signed by a trusted CA (pass
  // --cacert)", "the certificate does not name 127.0.0.1", ...
  const std::string& why() const { return why_; }
  // The failure as a client reports it: kUnavailable, "TLS: cannot verify
  // <peer>: <why>" when the peer's certificate failed, else "TLS: with
  // <peer>: <why>". REQUIRES: the last call gave kFailed.
  core::Status Failure(const std::string& peer) const;
  // For a server: the failure was a plain HTTP request sent to this TLS
  // port (it may be answered in plain text, as nginx does).
  bool plain_http() const { return plain_http_; }

 private:
  TlsSession(std::shared_ptr<const TlsContext> context, ssl_st* ssl, bool client, std::string host);
  // Classifies the result `ret` of an SSL call, filling why_ on failure.
  TlsIo Outcome(int ret);

  std::shared_ptr<const TlsContext> context_;
  ssl_st* ssl_;
  bool client_;
  std::string host_;
  bool handshake_done_ = false;
  bool verify_failed_ = false;
  bool plain_http_ = false;
  std::string why_;
};

// Drives `session`'s handshake over `fd` until it finishes or `deadline`
// passes (for blocking clients). Returns OK, kTimeout, or session.Failure().
core::Status HandshakeBefore(TlsSession& session, int fd,
                             std::chrono::steady_clock::time_point deadline,
                             const std::string& peer);

// The client side for the whole process: what every https:// connection it
// opens trusts and presents (as SetSourceAddress, set once at start-up).
// Loads the files now; returns their error (kInvalidArgument) if they are
// bad, and keeps the previous setting.
core::Status SetTlsClientFiles(const TlsClientFiles& files);
// The context for https:// connections: the one SetTlsClientFiles made, or
// one trusting the system's CAs, made on first use. Thread-safe.
core::Result<std::shared_ptr<const TlsContext>> TlsClientContext();

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_TLS_H_
