#include "cmd/common.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "core/counter_name.h"
#include "core/protocol.h"
#include "core/value.h"
#include "core/window.h"
#include "net/http_client.h"
#include "net/tls.h"
#include "net/url.h"

namespace shardctl::cmd {

const CLI::Validator& StrictInteger() {
  static const CLI::Validator validator(
      [](std::string& text) {
        core::Result<int64_t> value = core::ParseValue(text);
        return value.ok() ? std::string() : value.status().message();
      },
      "INT");
  return validator;
}

void AddClientOptions(CLI::App& command, ClientOptions& options) {
  command.add_option("--url", options.url, "The aggregator's address")
      ->type_name("URL")
      ->envname("SHARDCTL_URL")
      ->capture_default_str();
  command.add_option("--timeout", options.timeout_seconds, "Seconds to wait for the answer")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_flag("--json", options.json, "Print the server's JSON answer as it came");
  command
      .add_option("--token-file", options.token_file,
                  "A file holding the server's bearer token (default: $SHARDCTL_TOKEN)")
      ->type_name("FILE");
  AddTlsFileOptions(command, options.tls);
}

std::string TlsFileArguments(const TlsFileOptions& options) {
  std::string arguments;
  if (!options.cacert.empty()) arguments += " --cacert " + options.cacert;
  if (!options.cert.empty()) arguments += " --cert " + options.cert;
  if (!options.key.empty()) arguments += " --key " + options.key;
  return arguments;
}

void AddTlsFileOptions(CLI::App& command, TlsFileOptions& options) {
  command
      .add_option("--cacert", options.cacert,
                  "Trust the CAs in FILE (PEM) for https:// URLs instead of the system's")
      ->type_name("FILE")
      ->envname("SHARDCTL_CACERT");
  command
      .add_option("--cert", options.cert,
                  "Present the client certificate in FILE (PEM) to servers that ask for one")
      ->type_name("FILE")
      ->envname("SHARDCTL_CERT");
  command.add_option("--key", options.key, "The private key of --cert (PEM)")
      ->type_name("FILE")
      ->envname("SHARDCTL_KEY");
}

ExitCode LoadTlsFiles(const TlsFileOptions& options) {
  if (options.cert.empty() != options.key.empty()) {
    return Fail(ExitCode::kUsage,
                "--cert and --key go together: the client certificate and its private key");
  }
  if (options.cacert.empty() && options.cert.empty()) return ExitCode::kOk;
  core::Status loaded =
      net::SetTlsClientFiles({.ca = options.cacert, .cert = options.cert, .key = options.key});
  if (!loaded.ok()) return Fail(ExitCode::kUsage, loaded.message());
  return ExitCode::kOk;
}

bool IsTlsFailure(const core::Status& status) {
  return status.code() == core::Code::kUnavailable && status.message().starts_with("TLS: ");
}

ExitCode FailUnreachable(const core::Status& status, std::string_view hint) {
  if (IsTlsFailure(status)) {
    fmt::print(stderr, "shardctl: {}\n", status.message());
    return ExitCode::kUnreachable;
  }
  return Fail(ExitCode::kUnreachable, fmt::format("{}{}", status.message(), hint));
}

core::Result<std::string> CheckToken(std::string token, std::string_view origin) {
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
    token.pop_back();
  }
  if (token.empty()) return core::InvalidArgument(fmt::format("{} is empty", origin));
  for (char c : token) {
    if (c < '!' || c > '~') {
      return core::InvalidArgument(
          fmt::format("{} must hold one line of visible ASCII characters, without spaces", origin));
    }
  }
  return token;
}

core::Result<std::string> ReadTokenFile(const std::string& path) {
  constexpr size_t kMaxTokenFile = 4096;
  auto cannot_read = [&path](int error) {
    return core::InvalidArgument(
        fmt::format("cannot read the token file {}: {}", path, std::strerror(error)));
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cannot_read(errno);
  std::string token;
  char buffer[1024];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0 && token.size() <= kMaxTokenFile) {
    token.append(buffer, static_cast<size_t>(n));
  }
  int error = errno;
  ::close(fd);
  if (n < 0) return cannot_read(error);
  if (token.size() > kMaxTokenFile) {
    return core::InvalidArgument(
        fmt::format("the token file {} is larger than {} bytes", path, kMaxTokenFile));
  }
  return CheckToken(std::move(token), fmt::format("the token file {}", path));
}

bool UseColor() {
  const char* no_color = std::getenv("NO_COLOR");
  return isatty(STDOUT_FILENO) == 1 && (no_color == nullptr || *no_color == '\0');
}

std::string Colored(std::string_view text, int code) {
  if (!UseColor()) return std::string(text);
  return fmt::format("\x1b[{}m{}\x1b[0m", code, text);
}

ExitCode Fail(ExitCode code, std::string_view message) {
  fmt::print(stderr, "shardctl: error: {}\n", message);
  return code;
}

void AddCounterOptions(CLI::App& command, CounterOptions& options) {
  command
      .add_option("-k,--counter", options.name, "The counter's name (default: the default counter)")
      ->type_name("NAME");
  command
      .add_option("--window", options.window,
                  "A windowed counter: seconds per fixed window, aligned to the clock")
      ->type_name("SECONDS")
      ->check(StrictInteger());
}

core::Result<core::CounterRef> ToCounterRef(const CounterOptions& options) {
  core::CounterRef counter;
  if (options.name) {
    if (core::Status valid = core::ValidateCounterName(*options.name); !valid.ok()) return valid;
    counter.name = *options.name;
  }
  if (options.window) {
    if (core::Status valid = core::ValidateWindow(*options.window); !valid.ok()) return valid;
    counter.window = *options.window;
  }
  return counter;
}

namespace {

// Whether an attempt that ended this way may be worth repeating.
bool Retryable(const core::Result<net::HttpReply>& reply) {
  // Not reached, or the answer was lost or late; but a certificate refused
  // stays refused.
  if (!reply.ok()) return !IsTlsFailure(reply.status());
  int status = reply->status;
  return status == 409 || status == 502 || status == 503 || status == 504;
}

// Why an attempt failed, in a few words, for the retry note.
std::string FailureOf(const core::Result<net::HttpReply>& reply) {
  if (!reply.ok()) return reply.status().message();
  return fmt::format("the server answered {}: {}", reply->status,
                     core::ParseErrorMessage(reply->body));
}

}  // namespace

core::Result<std::string> ClientToken(const ClientOptions& options) {
  if (!options.token_file.empty()) return ReadTokenFile(options.token_file);
  if (const char* from_env = std::getenv("SHARDCTL_TOKEN"); from_env != nullptr) {
    return CheckToken(from_env, "SHARDCTL_TOKEN");
  }
  return std::string();
}

std::unique_ptr<net::HttpClient> MakeServerClient(const ClientOptions& options, ExitCode* code) {
  core::Result<net::Url> url = net::ParseUrl(options.url);
  if (!url.ok()) {
    *code = Fail(ExitCode::kUsage, url.status().message());
    return nullptr;
  }
  core::Result<std::string> token = ClientToken(options);
  if (!token.ok()) {
    *code = Fail(ExitCode::kUsage, token.status().message());
    return nullptr;
  }
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_seconds * 1000));
  return std::make_unique<net::HttpClient>(
      *url, net::HttpClientOptions{
                .connect_timeout = timeout, .request_timeout = timeout, .bearer_token = *token});
}

ExitCode CallServer(const ClientOptions& options, const std::string& path,
                    const std::string* post_body, std::string* reply_body,
                    const net::HttpHeaders& headers, const RetryPolicy& retry) {
  ExitCode code = ExitCode::kOk;
  std::unique_ptr<net::HttpClient> client = MakeServerClient(options, &code);
  if (client == nullptr) return code;
  return CallServerWith(*client, path, post_body, reply_body, headers, retry);
}

ExitCode CallServerWith(net::HttpClient& client, const std::string& path,
                        const std::string* post_body, std::string* reply_body,
                        const net::HttpHeaders& headers, const RetryPolicy& retry) {
  auto send = [&] {
    return post_body != nullptr ? client.Post(path, *post_body, headers) : client.Get(path);
  };
  core::Result<net::HttpReply> reply = send();
  std::mt19937 random(std::random_device{}());
  auto backoff = retry.first_backoff;
  for (int attempt = 1; attempt <= retry.retries && Retryable(reply); ++attempt) {
    // Equal jitter: clients that failed together do not retry together.
    auto half = backoff / 2;
    auto wait = half + std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(
                           0, std::max<int64_t>(half.count(), 0))(random));
    fmt::print(stderr, "shardctl: {}; retrying in {:.1f} s ({} of {})\n", FailureOf(reply),
               static_cast<double>(wait.count()) / 1000, attempt, retry.retries);
    std::this_thread::sleep_for(wait);
    backoff = std::min(backoff * 2, retry.max_backoff);
    reply = send();
  }
  if (!reply.ok()) {
    return FailUnreachable(reply.status(),
                           reply.status().code() == core::Code::kUnavailable
                               ? "; is 'shardctl serve' running there? (--url or SHARDCTL_URL "
                                 "names another server)"
                               : "");
  }
  if (reply->status >= 200 && reply->status < 300) {
    *reply_body = std::move(reply->body);
    return ExitCode::kOk;
  }
  std::string message = core::ParseErrorMessage(reply->body);
  if (reply->status == 401) {
    return Fail(ExitCode::kRefused,
                fmt::format("the server refused the request (401): {}; give its token with "
                            "--token-file FILE or SHARDCTL_TOKEN",
                            message));
  }
  if (reply->status >= 400 && reply->status < 500) {
    return Fail(ExitCode::kRefused,
                fmt::format("the server refused the request ({}): {}", reply->status, message));
  }
  return Fail(
      ExitCode::kServerFailed,
      fmt::format("the server failed to serve the request ({}): {}", reply->status, message));
}

}  // namespace shardctl::cmd
