#include "core/idempotency_key.h"

#include <fmt/format.h>

namespace shardctl::core {
namespace {

bool Printable(char c) { return c >= 0x20 && c <= 0x7E; }

}  // namespace

Status ValidateIdempotencyKey(std::string_view key) {
  if (key.empty()) return InvalidArgument("the Idempotency-Key is empty; send 1 to 255 characters");
  if (key.size() > kMaxIdempotencyKeyBytes) {
    return InvalidArgument(
        fmt::format("the Idempotency-Key is {} bytes long; at most {} are allowed", key.size(),
                    kMaxIdempotencyKeyBytes));
  }
  for (char c : key) {
    if (!Printable(c)) {
      return InvalidArgument(
          "the Idempotency-Key holds a character that is not printable ASCII; use letters, "
          "digits and punctuation, e.g. a UUID");
    }
  }
  return {};
}

Result<std::string> ParseIdempotencyKeyHeader(std::string_view value) {
  size_t first = value.find_first_not_of(" \t");
  size_t last = value.find_last_not_of(" \t");
  if (first == std::string_view::npos) return ValidateIdempotencyKey("");
  value = value.substr(first, last - first + 1);

  std::string key;
  if (value.front() != '"') {
    // A bare token: everything visible, no spaces.
    for (char c : value) {
      if (c == ' ' || !Printable(c)) {
        return InvalidArgument(
            "the Idempotency-Key is not a valid header value; send a quoted string such as "
            "\"8e03978e-40d5-43e8-bc93-6894a57f9324\"");
      }
    }
    key.assign(value);
  } else {
    // RFC 8941 sf-string: printable ASCII between quotes, \" and \\ escaped.
    size_t at = 1;
    bool closed = false;
    for (; at < value.size(); ++at) {
      char c = value[at];
      if (c == '"') {
        closed = true;
        break;
      }
      if (c == '\\') {
        if (at + 1 >= value.size() || (value[at + 1] != '"' && value[at + 1] != '\\')) {
          return InvalidArgument(
              "the Idempotency-Key has a backslash that escapes neither \" nor \\");
        }
        c = value[++at];
      } else if (!Printable(c)) {
        return ValidateIdempotencyKey("\x01");  // the same message as for a bare key
      }
      key += c;
    }
    if (!closed || at + 1 != value.size()) {
      return InvalidArgument(
          "the Idempotency-Key must be one quoted string, such as \"8e03978e-40d5\", with "
          "nothing after it");
    }
  }
  if (Status valid = ValidateIdempotencyKey(key); !valid.ok()) return valid;
  return key;
}

std::string FormatIdempotencyKeyHeader(std::string_view key) {
  std::string value = "\"";
  for (char c : key) {
    if (c == '"' || c == '\\') value += '\\';
    value += c;
  }
  return value + "\"";
}

}  // namespace shardctl::core
