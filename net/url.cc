#include "net/url.h"

#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace shardctl::net {

std::string JoinHostPort(std::string_view host, int port) {
  if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::string Url::ToString() const { return (tls ? "https://" : "http://") + HostPort(); }
std::string Url::HostPort() const { return JoinHostPort(host, port); }

core::Result<Url> ParseUrl(std::string_view text) {
  auto bad = [text](std::string_view why) {
    return core::InvalidArgument(
        fmt::format("bad URL '{}': {}; expected http://HOST:PORT or https://HOST:PORT", text, why));
  };
  std::string_view rest = text;
  bool tls = false;
  if (size_t scheme_end = rest.find("://"); scheme_end != std::string_view::npos) {
    std::string scheme(rest.substr(0, scheme_end));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme != "http" && scheme != "https") {
      return bad(fmt::format("the scheme '{}' is not supported", scheme));
    }
    tls = scheme == "https";
    rest.remove_prefix(scheme_end + 3);
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad("it has a query or fragment; give only the server's address");
  }
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") return bad("it has a path; give only the server's address");
    rest = rest.substr(0, slash);
  }
  Url url;
  url.tls = tls;
  if (tls) url.port = 443;
  std::string_view port_text;
  if (rest.starts_with('[')) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 address misses its ']'");
    url.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return bad("unexpected text after ']'");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos && rest.find(':') != colon) {
      return bad("an IPv6 address must be in brackets, e.g. http://[::1]:4000");
    }
    url.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
  }
  if (url.host.empty()) return bad("the host is missing");
  // A host name, an IPv4 address, or (in brackets) an IPv6 address: nothing
  // else, so "user@host" or a stray space is refused rather than looked up.
  const bool ipv6 = rest.starts_with('[');
  for (char c : url.host) {
    bool allowed = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                   (ipv6 ? c == ':' || c == '%' : c == '_');
    if (!allowed) return bad(fmt::format("the host has a character '{}' that no host has", c));
  }
  if (!port_text.empty() || rest.ends_with(':')) {
    int port = 0;
    auto [end, error] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (error != std::errc() || end != port_text.data() + port_text.size() || port < 1 ||
        port > 65535) {
      return bad("the port must be a number from 1 to 65535");
    }
    url.port = port;
  }
  return url;
}

core::Status CheckOrigin(std::string_view origin) {
  auto bad = [origin](std::string_view why) {
    return core::InvalidArgument(fmt::format(
        "bad origin '{}': {}; expected scheme://host[:port], e.g. https://app.example.com",
        origin, why));
  };
  std::string_view rest;
  if (origin.starts_with("http://")) {
    rest = origin.substr(7);
  } else if (origin.starts_with("https://")) {
    rest = origin.substr(8);
  } else {
    return bad("it must start with http:// or https://");
  }
  if (rest.find_first_of("/?#") != std::string_view::npos) {
    return bad("an origin has no path, not even a trailing /");
  }
  if (rest.empty()) return bad("the host is missing");
  for (char c : rest) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '[' || c == ']' || c == '_')) {
      return bad(fmt::format("'{}' cannot be in a host", c));
    }
  }
  return {};
}

}  // namespace shardctl::net
