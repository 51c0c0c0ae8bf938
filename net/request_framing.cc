#include "net/request_framing.h"

#include <optional>

namespace shardctl::net {
namespace {

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

bool IsSpaceOrTab(char c) { return c == ' ' || c == '\t'; }

// A plain decimal number that fits in uint64_t, or nullopt.
std::optional<uint64_t> ParseLength(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;  // 19 digits always fit
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

}  // namespace

size_t FindHeaderEnd(std::string_view received, size_t from) {
  // The blank line is a "\r\n" right after the '\n' that ends the line before
  // it; the request line itself always comes first, so it is "\n\r\n".
  size_t start = from >= 2 ? from - 2 : 0;
  size_t at = received.find("\n\r\n", start);
  return at == std::string_view::npos ? at : at + 3;
}

RequestFrame FrameRequest(std::string_view received, size_t max_header_bytes,
                          size_t max_body_bytes) {
  RequestFrame frame;
  size_t header_end = FindHeaderEnd(received);
  if (header_end == std::string_view::npos) {
    if (received.size() > max_header_bytes) frame.kind = RequestFrame::Kind::kHeaderTooLarge;
    return frame;
  }
  if (header_end > max_header_bytes) {
    frame.kind = RequestFrame::Kind::kHeaderTooLarge;
    return frame;
  }

  // Header lines as cpp-httplib reads them: split at '\n'; a line that does
  // not end in "\r\n" is skipped; the name is everything before the first
  // ':', the value what follows, without surrounding spaces and tabs; an
  // empty value drops the header.
  std::optional<uint64_t> length;
  bool transfer_encoding = false;
  size_t line_start = received.find('\n') + 1;  // after the request line
  while (line_start < header_end - 2) {
    size_t line_end = received.find('\n', line_start);  // < header_end
    std::string_view line = received.substr(line_start, line_end + 1 - line_start);
    line_start = line_end + 1;
    if (line.size() < 2 || line[line.size() - 2] != '\r') continue;
    line.remove_suffix(2);
    while (!line.empty() && IsSpaceOrTab(line.back())) line.remove_suffix(1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && IsSpaceOrTab(value.front())) value.remove_prefix(1);
    if (value.empty()) continue;
    if (EqualsIgnoringCase(name, "Transfer-Encoding")) {
      transfer_encoding = true;
    } else if (EqualsIgnoringCase(name, "Content-Length")) {
      std::optional<uint64_t> parsed = ParseLength(value);
      // Two different lengths are as bad as none that parses.
      if (!parsed || (length && *length != *parsed)) {
        frame.kind = RequestFrame::Kind::kBadLength;
        return frame;
      }
      length = parsed;
    }
  }

  if (transfer_encoding) {
    frame.kind = RequestFrame::Kind::kComplete;
    frame.length = header_end;
    return frame;
  }
  frame.body_bytes = length.value_or(0);
  if (frame.body_bytes > max_body_bytes) {
    frame.kind = RequestFrame::Kind::kBodyTooLarge;
    frame.length = header_end;
    return frame;
  }
  frame.length = header_end + static_cast<size_t>(frame.body_bytes);
  if (received.size() >= frame.length) frame.kind = RequestFrame::Kind::kComplete;
  return frame;
}

}  // namespace shardctl::net
