#include "tests/integration/tls_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

int MillisecondsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Runs `args` (args[0] looked up in PATH) in `dir` to completion, killed
// after `timeout`; `out` holds stdout and stderr together, exit_code is -1 if
// it was killed or could not start.
RunResult RunProgram(const std::vector<std::string>& args, const std::string& dir,
                     std::chrono::milliseconds timeout) {
  RunResult result;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    result.out = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    pollfd pfd{out[0], POLLIN, 0};
    int left = MillisecondsLeft(deadline);
    if (left == 0 || ::poll(&pfd, 1, left) == 0) {
      timed_out = true;
      break;
    }
    char buffer[4096];
    ssize_t n = ::read(out[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.out.append(buffer, static_cast<size_t>(n));
  }
  ::close(out[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (timed_out) {
    result.out += "\n(killed after " + std::to_string(timeout.count()) + " ms)";
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

// Everything in OpenSSL's error queue of this thread, in words, emptying it.
std::string OpensslErrors() {
  std::string text;
  while (unsigned long code = ::ERR_get_error()) {
    const char* reason = ::ERR_reason_error_string(code);
    if (!text.empty()) text += "; ";
    text += reason != nullptr ? reason : "error " + std::to_string(code);
  }
  return text;
}

std::string NameText(const X509_NAME* name) {
  BIO* bio = ::BIO_new(::BIO_s_mem());
  ::X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<size_t>(size));
  ::BIO_free(bio);
  return text;
}

PeerCertificate Describe(X509* certificate) {
  PeerCertificate described;
  const X509_NAME* subject = ::X509_get_subject_name(certificate);
  described.subject = NameText(subject);
  described.issuer = NameText(::X509_get_issuer_name(certificate));
  char cn[256] = {};
  if (::X509_NAME_get_text_by_NID(const_cast<X509_NAME*>(subject), NID_commonName, cn, sizeof(cn)) >
      0) {
    described.cn = cn;
  }
  BIGNUM* serial = ::ASN1_INTEGER_to_BN(::X509_get0_serialNumber(certificate), nullptr);
  if (serial != nullptr) {
    char* hex = ::BN_bn2hex(serial);
    described.serial = hex;
    ::OPENSSL_free(hex);
    ::BN_free(serial);
  }
  return described;
}

// The value of header `name` (lower case) in the head of an HTTP message, or
// "" when absent.
std::string HeaderValue(const std::string& head, const std::string& name) {
  std::istringstream lines(head);
  std::string line;
  std::getline(lines, line);  // the status line
  while (std::getline(lines, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string field = line.substr(0, colon);
    for (char& c : field) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (field != name) continue;
    size_t start = line.find_first_not_of(" \t", colon + 1);
    size_t end = line.find_last_not_of(" \t\r");
    return start == std::string::npos ? "" : line.substr(start, end - start + 1);
  }
  return "";
}

bool IsChunked(const std::string& head) {
  std::string coding = HeaderValue(head, "transfer-encoding");
  for (char& c : coding) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return coding.find("chunked") != std::string::npos;
}

// The body of a chunked message from `data` (starting at its first chunk's
// size line): the decoded body and the length of the encoding, or nullopt if
// it does not end in `data` yet (or is malformed: the caller reads on and
// times out, with what came in its error).
std::optional<std::pair<std::string, size_t>> DecodeChunked(const std::string& data) {
  std::string body;
  size_t at = 0;
  for (;;) {
    size_t line_end = data.find("\r\n", at);
    if (line_end == std::string::npos) return std::nullopt;
    size_t size = 0;
    try {
      size = std::stoul(data.substr(at, line_end - at), nullptr, 16);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    at = line_end + 2;
    if (size == 0) {  // trailers, then an empty line
      for (;;) {
        size_t end = data.find("\r\n", at);
        if (end == std::string::npos) return std::nullopt;
        bool empty = end == at;
        at = end + 2;
        if (empty) return std::make_pair(body, at);
      }
    }
    if (data.size() < at + size + 2) return std::nullopt;
    body.append(data, at, size);
    at += size + 2;
  }
}

// Blocks SIGPIPE in this thread while it lives, and discards one raised
// meanwhile: OpenSSL writes with write(2), which raises SIGPIPE when the
// server has closed the connection, and gtest's process would die of it.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_);
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      sigset_t pipe_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      timespec zero{0, 0};
      while (::sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

// The configuration every openssl run of TestPki reads: the certificates'
// extensions, and a minimal `openssl ca` (the only way OpenSSL 3.0 has to
// sign a certificate with a validity in the past: -startdate/-enddate).
std::string PkiConfig() {
  std::string config = R"(# Written by tests/integration/tls_harness.cc
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = SERVER_NAMES
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[wrong_name_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:other.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca]
default_ca = test_ca
[test_ca]
database = ca-index.txt
serial = ca-serial.txt
new_certs_dir = ca-issued
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none
[any_name]
commonName = supplied
)";
  std::string names;
  for (const std::string& name : TestPki::ServerNames()) {
    names += (names.empty() ? "" : ",") + name;
  }
  config.replace(config.find("SERVER_NAMES"), std::string("SERVER_NAMES").size(), names);
  return config;
}

bool WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream file(path);
  file << contents;
  return static_cast<bool>(file.flush());
}

}  // namespace

std::vector<std::string> TestPki::ServerNames() {
  std::vector<std::string> names = {"IP:127.0.0.1"};
  for (int i = 11; i <= 19; ++i) names.push_back("IP:127.0.0." + std::to_string(i));
  names.push_back("DNS:localhost");
  return names;
}

bool TestPki::Openssl(const std::vector<std::string>& args) {
  if (!error_.empty()) return false;  // an earlier step failed
  std::vector<std::string> command = {"openssl"};
  command.insert(command.end(), args.begin(), args.end());
  RunResult run = RunProgram(command, dir(), std::chrono::seconds(30));
  if (run.exit_code == 0) return true;
  std::string line;
  for (const std::string& arg : command) line += (line.empty() ? "" : " ") + arg;
  error_ = "`" + line + "` (in " + dir() + ") failed:\n" + run.out;
  ADD_FAILURE() << "cannot make the test PKI: " << error_;
  return false;
}

TestPki::TestPki() {
  auto start = Clock::now();
  const std::string kDays = "3650";
  if (!WriteFile(File("openssl.cnf"), PkiConfig()) || !WriteFile(File("ca-index.txt"), "") ||
      !WriteFile(File("ca-serial.txt"), std::string(kExpiredSerial) + "\n")) {
    error_ = "cannot write in " + dir();
    ADD_FAILURE() << error_;
    return;
  }
  std::filesystem::create_directory(File("ca-issued"));
  const std::vector<std::string> kNewKey = {
      "-config", "openssl.cnf", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
      "-nodes"};
  // A self-signed CA: name.pem, name.key.
  auto ca = [&](const std::string& name, const std::string& cn) {
    std::vector<std::string> args = {"req"};
    args.insert(args.end(), kNewKey.begin(), kNewKey.end());
    args.insert(args.end(),
                {"-x509", "-keyout", name + ".key", "-out", name + ".pem", "-subj", "/CN=" + cn,
                 "-days", kDays, "-set_serial", "1", "-extensions", "ca_ext"});
    return Openssl(args);
  };
  // A key and a certificate signed by CA `issuer`: one `openssl req -CA`.
  auto issue = [&](const std::string& name, const std::string& cn, const std::string& issuer,
                   const std::string& serial, const std::string& extensions) {
    std::vector<std::string> args = {"req"};
    args.insert(args.end(), kNewKey.begin(), kNewKey.end());
    args.insert(args.end(), {"-keyout", name + ".key", "-out", name + ".pem", "-subj", "/CN=" + cn,
                             "-CA", issuer + ".pem", "-CAkey", issuer + ".key", "-days", kDays,
                             "-set_serial", "0x" + serial, "-extensions", extensions});
    return Openssl(args);
  };
  ca("ca", kCaCn);
  ca("other-ca", kOtherCaCn);
  issue("server", kServerCn, "ca", kServerSerial, "server_ext");
  issue("client", kClientCn, "ca", kClientSerial, "client_ext");
  issue("renewed", kRenewedCn, "ca", kRenewedSerial, "server_ext");
  issue("wrong-name", kWrongNameCn, "ca", kWrongNameSerial, "wrong_name_ext");
  issue("other-server", kOtherServerCn, "other-ca", kOtherServerSerial, "server_ext");
  issue("other-client", kOtherClientCn, "other-ca", kOtherClientSerial, "client_ext");
  // Expired: `openssl x509 -req` and `req -x509` of OpenSSL 3.0 start a
  // certificate now (-not_before came in 3.4; -days -1 makes one that ends
  // before it starts); `openssl ca` takes any dates. Its serial is the next
  // in ca-serial.txt (kExpiredSerial).
  std::vector<std::string> csr = {"req"};
  csr.insert(csr.end(), kNewKey.begin(), kNewKey.end());
  csr.insert(csr.end(), {"-keyout", "expired.key", "-out", "expired.csr", "-subj",
                         std::string("/CN=") + kExpiredCn});
  Openssl(csr);
  Openssl({"ca", "-config", "openssl.cnf", "-batch", "-notext", "-in", "expired.csr", "-out",
           "expired.pem", "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
           "-extensions", "server_ext"});
  make_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

const TestPki& TestPki::Shared() {
  // Destroyed (its directory removed) at exit.
  static const TestPki pki;
  return pki;
}

bool InstallFile(const std::string& from, const std::string& to) {
  std::string next = to + ".installing";
  std::error_code error;
  std::filesystem::copy_file(from, next, std::filesystem::copy_options::overwrite_existing, error);
  if (!error) std::filesystem::rename(next, to, error);
  if (error) {
    ADD_FAILURE() << "cannot install " << from << " as " << to << ": " << error.message();
    return false;
  }
  return true;
}

PeerCertificate ReadCertificate(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) {
    ADD_FAILURE() << "cannot read " << path << ": " << std::strerror(errno);
    return {};
  }
  X509* certificate = ::PEM_read_X509(file, nullptr, nullptr, nullptr);
  std::fclose(file);
  if (certificate == nullptr) {
    ADD_FAILURE() << "no certificate in " << path << ": " << OpensslErrors();
    return {};
  }
  PeerCertificate described = Describe(certificate);
  ::X509_free(certificate);
  return described;
}

TlsTestConnection::~TlsTestConnection() { Close(); }

std::string TlsTestConnection::Fail(const std::string& why) {
  error_ = why;
  return "";
}

bool TlsTestConnection::Connect(int port, const std::string& ca, const std::string& cert,
                                const std::string& key) {
  return Connect(port, TlsClientOptions{.ca = ca, .cert = cert, .key = key});
}

bool TlsTestConnection::Connect(int port, const TlsClientOptions& options) {
  Close();
  error_.clear();
  buffer_.clear();
  failed_ = false;
  peer_ = {};
  host_ = options.host;
  verify_ = options.verify;
  timeout_ = options.timeout;
  auto deadline = Clock::now() + options.timeout;
  ::ERR_clear_error();

  context_ = ::SSL_CTX_new(::TLS_client_method());
  int version = options.version == "TLSv1.2"   ? TLS1_2_VERSION
                : options.version == "TLSv1.3" ? TLS1_3_VERSION
                                               : 0;
  if (!options.version.empty() && version == 0) {
    error_ = "TlsClientOptions::version: " + options.version + " is neither TLSv1.2 nor TLSv1.3";
    Close();
    return false;
  }
  ::SSL_CTX_set_min_proto_version(context_, version != 0 ? version : TLS1_2_VERSION);
  // A server that closes without close_notify ends an answer without a
  // length as well (OpenSSL 3 would call it an error).
  ::SSL_CTX_set_options(context_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (version != 0) ::SSL_CTX_set_max_proto_version(context_, version);
  if (options.verify) {
    if (::SSL_CTX_load_verify_locations(context_, options.ca.c_str(), nullptr) != 1) {
      error_ = "cannot load the CA " + options.ca + ": " + OpensslErrors();
      Close();
      return false;
    }
    ::SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
  }
  if (!options.cert.empty() &&
      (::SSL_CTX_use_certificate_chain_file(context_, options.cert.c_str()) != 1 ||
       ::SSL_CTX_use_PrivateKey_file(context_, options.key.c_str(), SSL_FILETYPE_PEM) != 1)) {
    error_ = "cannot load the client certificate " + options.cert + " and key " + options.key +
             ": " + OpensslErrors();
    Close();
    return false;
  }

  // TCP, non-blocking from the start so that every wait is bounded.
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, options.host.c_str(), &address.sin_addr) != 1) {
    error_ = "not an IPv4 address: " + options.host;
    Close();
    return false;
  }
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int yes = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    int connect_error = errno;
    if (connect_error == EINPROGRESS) {
      pollfd pfd{fd_, POLLOUT, 0};
      if (::poll(&pfd, 1, MillisecondsLeft(deadline)) <= 0) {
        connect_error = ETIMEDOUT;
      } else {
        socklen_t length = sizeof(connect_error);
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &connect_error, &length);
      }
    }
    if (connect_error != 0) {
      error_ = "cannot connect to " + options.host + ":" + std::to_string(port) + ": " +
               std::strerror(connect_error);
      Close();
      return false;
    }
  }

  ssl_ = ::SSL_new(context_);
  ::SSL_set_fd(ssl_, fd_);
  const std::string& name = options.server_name.empty() ? options.host : options.server_name;
  in_addr ip{};
  if (::inet_pton(AF_INET, name.c_str(), &ip) == 1) {
    ::X509_VERIFY_PARAM_set1_ip_asc(::SSL_get0_param(ssl_), name.c_str());
  } else {
    ::SSL_set_tlsext_host_name(ssl_, name.c_str());
    ::SSL_set1_host(ssl_, name.c_str());
  }
  if (Drive([this] { return ::SSL_connect(ssl_); }, deadline, "handshake") <= 0) {
    Close();
    return false;
  }
  X509* certificate = ::SSL_get1_peer_certificate(ssl_);
  if (certificate != nullptr) {
    peer_ = Describe(certificate);
    ::X509_free(certificate);
  }
  return true;
}

template <typename Op>
int TlsTestConnection::Drive(Op op, Clock::time_point deadline, const char* what) {
  SigpipeGuard guard;
  for (;;) {
    ::ERR_clear_error();
    int ret = op();
    if (ret > 0) return ret;
    int code = ::SSL_get_error(ssl_, ret);
    short events = 0;
    if (code == SSL_ERROR_WANT_READ) events = POLLIN;
    if (code == SSL_ERROR_WANT_WRITE) events = POLLOUT;
    if (events != 0) {
      pollfd pfd{fd_, events, 0};
      if (::poll(&pfd, 1, MillisecondsLeft(deadline)) <= 0) {
        error_ =
            std::string(what) + ": timed out after " + std::to_string(timeout_.count()) + " ms";
        failed_ = true;  // mid-record, perhaps: no close_notify after it
        return -1;
      }
      continue;
    }
    if (code == SSL_ERROR_ZERO_RETURN) {
      error_ = std::string(what) + ": the server closed the connection (close_notify)";
      return 0;
    }
    std::string why = OpensslErrors();
    long verify = ::SSL_get_verify_result(ssl_);
    if (verify_ && verify != X509_V_OK) {
      why += std::string(why.empty() ? "" : ": ") + ::X509_verify_cert_error_string(verify);
    }
    if (why.empty() && code == SSL_ERROR_SYSCALL) {
      why = errno != 0 ? std::strerror(errno) : "the server closed the connection";
    }
    error_ = std::string(what) + ": " + (why.empty() ? "failed" : why);
    failed_ = true;  // OpenSSL forbids SSL_shutdown after a fatal error
    return -1;
  }
}

bool TlsTestConnection::ReadMore(Clock::time_point deadline) {
  char data[16384];
  int n = Drive([&] { return ::SSL_read(ssl_, data, sizeof(data)); }, deadline, "read");
  if (n <= 0) {
    // Closed by the server, failed or timed out: closed here too (a server
    // such as s_server waits for the client to close before it accepts the
    // next connection).
    Close();
    return false;
  }
  buffer_.append(data, static_cast<size_t>(n));
  return true;
}

std::string TlsTestConnection::RoundTrip(const std::string& request) {
  if (ssl_ == nullptr) return Fail("not connected" + (error_.empty() ? "" : " (" + error_ + ")"));
  error_.clear();
  auto deadline = Clock::now() + timeout_;
  size_t sent = 0;
  while (sent < request.size()) {
    int n = Drive(
        [&] {
          return ::SSL_write(ssl_, request.data() + sent, static_cast<int>(request.size() - sent));
        },
        deadline, "write");
    if (n <= 0) {
      Close();
      return "";
    }
    sent += static_cast<size_t>(n);
  }
  size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!ReadMore(deadline)) {
      return Fail(error_ + (buffer_.empty() ? "" : "; received only: " + buffer_));
    }
  }
  const std::string head = buffer_.substr(0, head_end + 4);
  size_t length = head.size();
  if (IsChunked(head)) {
    std::optional<std::pair<std::string, size_t>> decoded;
    while (!(decoded = DecodeChunked(buffer_.substr(head.size())))) {
      if (!ReadMore(deadline)) return Fail(error_ + "; an unfinished chunked body: " + buffer_);
    }
    length += decoded->second;
  } else if (std::string value = HeaderValue(head, "content-length"); !value.empty()) {
    length += std::stoul(value);
    while (buffer_.size() < length) {
      if (!ReadMore(deadline)) return Fail(error_ + "; a body cut short: " + buffer_);
    }
  } else {
    while (ReadMore(deadline)) {
    }
    if (failed_) return Fail(error_ + "; received: " + buffer_);
    error_.clear();  // the end of the connection ends the answer
    length = buffer_.size();
  }
  std::string answer = buffer_.substr(0, length);
  buffer_.erase(0, length);
  return answer;
}

namespace {
Reply ParseAnswer(const std::string& answer) {
  Reply reply;
  size_t head_end = answer.find("\r\n\r\n");
  if (answer.size() < 12 || head_end == std::string::npos) return reply;
  reply.status = std::atoi(answer.substr(9, 3).c_str());
  const std::string head = answer.substr(0, head_end + 4);
  reply.content_type = HeaderValue(head, "content-type");
  reply.body = answer.substr(head_end + 4);
  if (IsChunked(head)) {
    if (auto decoded = DecodeChunked(reply.body)) reply.body = decoded->first;
  }
  return reply;
}
}  // namespace

Reply TlsTestConnection::Get(const std::string& path) {
  return ParseAnswer(RoundTrip("GET " + path + " HTTP/1.1\r\nHost: " + host_ + "\r\n\r\n"));
}

Reply TlsTestConnection::Post(const std::string& path, const std::string& body) {
  return ParseAnswer(RoundTrip("POST " + path + " HTTP/1.1\r\nHost: " + host_ +
                               "\r\nContent-Type: application/json\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body));
}

std::string TlsTestConnection::version() const {
  return ssl_ != nullptr ? ::SSL_get_version(ssl_) : "";
}

void TlsTestConnection::Close() {
  if (ssl_ != nullptr) {
    if (!failed_) {
      SigpipeGuard guard;
      ::SSL_shutdown(ssl_);  // close_notify if the socket takes it now; no wait for the answer
    }
    ::SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (context_ != nullptr) {
    ::SSL_CTX_free(context_);
    context_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  ::ERR_clear_error();
}

PeerCertificate PeerCertificateAt(int port, const TlsClientOptions& options, std::string* error) {
  TlsTestConnection connection;
  bool connected = connection.Connect(port, options);
  if (error != nullptr) *error = connection.error();
  return connected ? connection.peer() : PeerCertificate{};
}

OpensslServer::OpensslServer(const std::string& cert, const std::string& key,
                             const std::string& client_ca, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"openssl", "s_server", "-accept", "127.0.0.1:0", "-www", "-cert",
                                   cert,      "-key",     key};
  if (!client_ca.empty()) {
    // -verify_return_error: without it s_server only logs a client
    // certificate it cannot verify, and lets the connection in.
    args.insert(args.end(), {"-Verify", "1", "-verify_return_error", "-CAfile", client_ca});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const std::string log = dir_.path() + "/log";
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return;
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    // stdout (its ACCEPT line) to us; the rest of what it says to the log.
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  // Its first line says where it listens: "ACCEPT 127.0.0.1:PORT".
  std::string said;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  size_t at;
  while ((at = said.find("ACCEPT ")) == std::string::npos ||
         said.find('\n', at) == std::string::npos) {
    pollfd pfd{out[0], POLLIN, 0};
    int left = MillisecondsLeft(deadline);
    if (left == 0 || ::poll(&pfd, 1, left) <= 0) break;
    char buffer[1024];
    ssize_t n = ::read(out[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    said.append(buffer, static_cast<size_t>(n));
  }
  // What it said, for Log().
  int log_fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (log_fd >= 0) {
    ssize_t written = ::write(log_fd, said.data(), said.size());
    (void)written;  // the log is for people: a short write loses nothing a test needs
    ::close(log_fd);
  }
  // Kept open until it stops (it prints nothing more there with -www, but a
  // closed pipe would kill it with SIGPIPE if it did).
  stdout_fd_ = out[0];
  if (at == std::string::npos) {
    ADD_FAILURE() << "openssl s_server did not say where it listens within 10 s:\n" << Log();
    Stop();
    return;
  }
  std::string address = said.substr(at + 7, said.find('\n', at) - at - 7);
  port_ = std::atoi(address.substr(address.rfind(':') + 1).c_str());
}

OpensslServer::~OpensslServer() { Stop(); }

void OpensslServer::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  if (!Reap(pid_, std::chrono::seconds(5))) {
    ::kill(pid_, SIGKILL);
    Reap(pid_, std::chrono::seconds(5));
  }
  pid_ = -1;
  port_ = 0;
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  stdout_fd_ = -1;
}

std::string OpensslServer::Log() const {
  std::ifstream file(dir_.path() + "/log");
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace shardctl::testing
