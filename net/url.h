// Url: the address of a shardctl server, as given on the command line.
// Pure parsing; thread-safe.
#ifndef SHARDCTL_NET_URL_H_
#define SHARDCTL_NET_URL_H_

#include <string>
#include <string_view>

#include "core/status.h"

namespace shardctl::net {

struct Url {
  std::string host;  // a name, an IPv4 address or an IPv6 address without brackets
  int port = 80;
  bool tls = false;  // https: TLS on the connection (net/tls.h)

  // "http://host:port" (https:// with tls), with brackets around an IPv6 host.
  std::string ToString() const;
  // "host:port", with brackets around an IPv6 host.
  std::string HostPort() const;
};

// Parses "http://HOST[:PORT][/]", "https://HOST[:PORT][/]" (port 443 by
// default) or "HOST:PORT" (http assumed). Returns the
// Url, or kInvalidArgument saying what is wrong (another scheme, a path, a
// port outside 1..65535, ...).
core::Result<Url> ParseUrl(std::string_view text);

// Checks a web origin as browsers send it in the Origin header:
// "http://HOST[:PORT]" or "https://HOST[:PORT]", lower-case scheme, no path,
// not even "/". Returns OK, or kInvalidArgument saying what is wrong.
core::Status CheckOrigin(std::string_view origin);

// Formats host and port as "host:port", bracketing IPv6 hosts.
std::string JoinHostPort(std::string_view host, int port);

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_URL_H_
