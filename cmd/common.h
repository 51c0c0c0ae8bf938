// What the subcommands share: errors printed one way, strict integer options,
// the options that say which server to talk to, and one call that reports
// every failure of a request the same way.
#ifndef SHARDCTL_CMD_COMMON_H_
#define SHARDCTL_CMD_COMMON_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "cmd/exit_code.h"
#include "core/shard_client.h"
#include "core/status.h"
#include "net/http_client.h"

namespace shardctl::cmd {

// True when stdout is a terminal and NO_COLOR (https://no-color.org) is unset
// or empty: only then is output coloured.
bool UseColor();
// `text` in the ANSI colour `code` (e.g. 32 green, 31 red) when UseColor().
std::string Colored(std::string_view text, int code);

// Prints "shardctl: error: <message>" on stderr and returns `code`.
ExitCode Fail(ExitCode code, std::string_view message);

// A CLI11 validator for integer options: plain decimal only, so that "010"
// is not read as octal, "0x10" as hex, nor a huge number saturated.
const CLI::Validator& StrictInteger();

// What a client command's https:// connections trust and present: PEM
// files, "" when not given.
struct TlsFileOptions {
  std::string cacert;  // the CAs to trust ("": the system's)
  std::string cert;    // a client certificate, for servers that ask for one
  std::string key;     // its private key
};

// Adds --cacert, --cert and --key (also SHARDCTL_CACERT, SHARDCTL_CERT and
// SHARDCTL_KEY; the options win) to `command`.
void AddTlsFileOptions(CLI::App& command, TlsFileOptions& options);

// " --cacert FILE --cert FILE --key FILE", each only when given, for a
// command line that a message tells the user to run.
std::string TlsFileArguments(const TlsFileOptions& options);

// Loads the files for every https:// connection of this process
// (net::SetTlsClientFiles), once at the start of a command; nothing when none
// is given. Returns kOk, or prints why a file does not load, naming it, and
// returns kUsage.
ExitCode LoadTlsFiles(const TlsFileOptions& options);

// True if `status` is a failure of TLS (its message starts "TLS: "): the
// server's certificate, or ours, was refused. Trying again would not help,
// nor is it a sign that no server runs there.
bool IsTlsFailure(const core::Status& status);

// Prints why a server could not be reached and returns kUnreachable: as
// Fail does, with `hint` after the message; a TLS failure as the TLS plan
// of issue 16 fixes it, "shardctl: TLS: cannot verify https://...: why",
// without the hint.
ExitCode FailUnreachable(const core::Status& status, std::string_view hint = "");

struct ClientOptions {
  std::string url = "http://127.0.0.1:4000";
  double timeout_seconds = 5;
  bool json = false;
  std::string token_file;  // "": the token is $SHARDCTL_TOKEN, if set
  TlsFileOptions tls;
};

// Adds --url (also SHARDCTL_URL), --timeout, --json, --token-file and the
// TLS files (AddTlsFileOptions) to `command`. The command loads the TLS
// files with LoadTlsFiles when it starts.
void AddClientOptions(CLI::App& command, ClientOptions& options);

// Reads a bearer token from `path`: the file's contents without trailing
// whitespace (a final newline). Returns kInvalidArgument naming the file when
// it cannot be read, is empty, or holds anything but visible ASCII characters
// (which could not travel in an HTTP header).
core::Result<std::string> ReadTokenFile(const std::string& path);
// The token a client command sends: from --token-file, else $SHARDCTL_TOKEN,
// else "" (none).
core::Result<std::string> ClientToken(const ClientOptions& options);
// Checks a token given directly (e.g. from the environment) the same way.
// `origin` names where it came from, for the message.
core::Result<std::string> CheckToken(std::string token, std::string_view origin);

// Which counter a command is about: --counter/-k NAME and --window SECONDS.
struct CounterOptions {
  std::optional<std::string> name;  // none: the default counter
  std::optional<int64_t> window;    // none: a plain counter
};
void AddCounterOptions(CLI::App& command, CounterOptions& options);
// Returns the counter the options name, or kInvalidArgument for a bad name or
// window.
core::Result<core::CounterRef> ToCounterRef(const CounterOptions& options);

// How CallServer retries a request that is safe to send again: a GET, or a
// POST with an Idempotency-Key. It retries when the server could not be
// reached, the answer was lost or late, or the server answered 409 (the first
// attempt is still being served), 502, 503 or 504; after an exponential
// backoff with jitter: the n-th retry waits between half of and all of
// first_backoff * 2^(n-1), at most max_backoff.
struct RetryPolicy {
  int retries = 0;  // attempts after the first
  std::chrono::milliseconds first_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
};

// Sends a GET (`post_body` null) or POST to `path` on the server, with
// `headers` and the token of --token-file or $SHARDCTL_TOKEN if there is one,
// retrying as `retry` says. Returns kOk with the answer in *reply_body when
// the server answered 2xx; otherwise prints why the last attempt failed and
// returns the exit code for it (kRefused, kUnreachable, kUsage for an
// unreadable token file, ...). Each retry is announced on stderr.
ExitCode CallServer(const ClientOptions& options, const std::string& path,
                    const std::string* post_body, std::string* reply_body,
                    const net::HttpHeaders& headers = {}, const RetryPolicy& retry = {});

// A client for the server `options` name (URL, token, timeout), to keep for
// several calls (its connections stay open); or nullptr, with the reason
// printed and *code set.
std::unique_ptr<net::HttpClient> MakeServerClient(const ClientOptions& options, ExitCode* code);
// CallServer over `client`.
ExitCode CallServerWith(net::HttpClient& client, const std::string& path,
                        const std::string* post_body, std::string* reply_body,
                        const net::HttpHeaders& headers = {}, const RetryPolicy& retry = {});

// Prints a 2xx answer: as it came with --json, else through `print`, which
// gets the parsed reply. A reply that does not parse is a server failure.
template <typename Parse, typename Print>
ExitCode PrintReply(const ClientOptions& options, const std::string& body, Parse parse,
                    Print print) {
  if (options.json) {
    std::fputs((body + "\n").c_str(), stdout);
    return ExitCode::kOk;
  }
  auto reply = parse(body);
  if (!reply.ok()) return Fail(ExitCode::kServerFailed, reply.status().message());
  print(*reply);
  return ExitCode::kOk;
}

}  // namespace shardctl::cmd

#endif  // SHARDCTL_CMD_COMMON_H_
