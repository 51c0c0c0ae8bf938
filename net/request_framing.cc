#include "net/request_framing.h"

#include <algorithm>
#include <cstddef>
#include <optional>

namespace shardctl::net {
namespace {

bool IsSpaceOrTab(char c) { return c == ' ' || c == '\t'; }

// A control character other than tab: never valid in a request line or header.
bool IsControl(char c) {
  auto byte = static_cast<unsigned char>(c);
  return (byte < 0x20 && c != '\t') || byte == 0x7f;
}

// A character of a header name ("token" in RFC 9110 section 5.6.2).
bool IsTokenChar(char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A line's text without its CRLF, or nullopt if it does not end in CRLF or
// holds a control character.
std::optional<std::string_view> LineText(std::string_view line) {
  if (line.size() < 2 || line.substr(line.size() - 2) != "\r\n") return std::nullopt;
  line.remove_suffix(2);
  for (char c : line) {
    if (IsControl(c)) return std::nullopt;
  }
  return line;
}

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

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

std::string DecodePercent(std::string_view text, bool plus_is_space) {
  std::string decoded;
  decoded.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size() && HexDigit(text[i + 1]) >= 0 &&
        HexDigit(text[i + 2]) >= 0) {
      decoded.push_back(static_cast<char>(HexDigit(text[i + 1]) * 16 + HexDigit(text[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      decoded.push_back(' ');
    } else {
      decoded.push_back(c);
    }
  }
  return decoded;
}

const std::string_view* RequestHead::Find(std::string_view name) const {
  for (const auto& [header, value] : headers) {
    if (EqualsIgnoringCase(header, name)) return &value;
  }
  return nullptr;
}

bool RequestHead::HasToken(std::string_view name, std::string_view token) const {
  for (const auto& [header, value] : headers) {
    if (!EqualsIgnoringCase(header, name)) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (EqualsIgnoringCase(TrimSpacesAndTabs(item), token)) return true;
    }
  }
  return false;
}

size_t RequestHead::Count(std::string_view name) const {
  size_t count = 0;
  for (const auto& header : headers) count += EqualsIgnoringCase(header.first, name) ? 1 : 0;
  return count;
}

bool ParseRequestHead(std::string_view header, RequestHead* head) {
  head->headers.clear();
  size_t line_end = header.find("\r\n");
  std::string_view line = header.substr(0, line_end);
  size_t first_space = line.find(' ');
  size_t last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == 0 || last_space == first_space) {
    return false;
  }
  head->method = line.substr(0, first_space);
  head->target = line.substr(first_space + 1, last_space - first_space - 1);
  std::string_view version = line.substr(last_space + 1);
  if (!std::all_of(head->method.begin(), head->method.end(), IsTokenChar) || head->target.empty() ||
      head->target.front() != '/' || head->target.find(' ') != std::string_view::npos ||
      (version != "HTTP/1.1" && version != "HTTP/1.0")) {
    return false;
  }
  head->minor_version = version.back() - '0';
  // Every line was checked by FrameRequest: it ends in CRLF and has a colon
  // after a token.
  ParseHeaderLines(header.substr(line_end + 2), /*drop_empty=*/true, &head->headers);
  return true;
}

void ParseHeaderLines(std::string_view lines, bool drop_empty,
                      std::vector<std::pair<std::string_view, std::string_view>>* headers) {
  headers->clear();
  size_t start = 0;
  while (start + 2 < lines.size()) {
    size_t end = lines.find("\r\n", start);
    if (end == std::string_view::npos) end = lines.size();
    std::string_view text = lines.substr(start, end - start);
    start = end + 2;
    size_t colon = text.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = TrimSpacesAndTabs(text.substr(colon + 1));
    if (drop_empty && value.empty()) continue;
    headers->emplace_back(text.substr(0, colon), value);
  }
}

std::string_view TrimSpacesAndTabs(std::string_view text) {
  while (!text.empty() && IsSpaceOrTab(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpaceOrTab(text.back())) text.remove_suffix(1);
  return text;
}

bool ExpectsContinue(std::string_view received) {
  size_t end = FindHeaderEnd(received);
  if (end == std::string_view::npos) return false;
  std::string_view header = received.substr(0, end);
  size_t line_start = header.find('\n');  // past the request line
  if (header.substr(0, line_start).ends_with(" HTTP/1.0\r")) return false;
  while (line_start != std::string_view::npos && line_start + 1 < header.size()) {
    size_t line_end = header.find('\n', line_start + 1);
    std::string_view line = header.substr(
        line_start + 1,
        (line_end == std::string_view::npos ? header.size() : line_end) - line_start - 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos && EqualsIgnoringCase(line.substr(0, colon), "expect")) {
      if (EqualsIgnoringCase(TrimSpacesAndTabs(line.substr(colon + 1)), "100-continue")) {
        return true;
      }
    }
    line_start = line_end;
  }
  return false;
}

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
  frame.header_length = header_end;

  size_t request_line_end = received.find('\n') + 1;
  if (!LineText(received.substr(0, request_line_end))) {
    frame.kind = RequestFrame::Kind::kBadHeader;
    return frame;
  }

  // Header lines as cpp-httplib reads them: split at '\n'; the name is
  // everything before the first ':', the value what follows, without
  // surrounding spaces and tabs; an empty value drops the header. Lines that
  // httplib would skip are refused instead.
  std::optional<uint64_t> length;
  size_t length_lines = 0;
  size_t coding_lines = 0;
  bool chunked = false;  // the one Transfer-Encoding line says "chunked"
  size_t line_start = request_line_end;
  while (line_start < header_end - 2) {
    size_t line_end = received.find('\n', line_start);  // < header_end
    std::optional<std::string_view> text =
        LineText(received.substr(line_start, line_end + 1 - line_start));
    line_start = line_end + 1;
    size_t colon = text ? text->find(':') : std::string_view::npos;
    if (colon == std::string_view::npos || colon == 0 ||
        !std::all_of(text->begin(), text->begin() + static_cast<ptrdiff_t>(colon), IsTokenChar)) {
      frame.kind = RequestFrame::Kind::kBadHeader;
      return frame;
    }
    std::string_view name = text->substr(0, colon);
    std::string_view value = TrimSpacesAndTabs(text->substr(colon + 1));
    if (EqualsIgnoringCase(name, "Range")) {
      frame.kind = RequestFrame::Kind::kRange;
      return frame;
    }
    if (EqualsIgnoringCase(name, "Transfer-Encoding")) {
      ++coding_lines;
      chunked = EqualsIgnoringCase(value, "chunked");
      continue;
    }
    if (EqualsIgnoringCase(name, "Content-Length")) ++length_lines;
    if (value.empty()) continue;
    if (EqualsIgnoringCase(name, "Content-Length")) {
      std::optional<uint64_t> parsed = ParseLength(value);
      // Two different lengths are as bad as none that parses.
      if (!parsed || (length && *length != *parsed)) {
        frame.kind = RequestFrame::Kind::kBadLength;
        return frame;
      }
      length = parsed;
    }
  }

  if (coding_lines > 0) {
    // RFC 9112 section 6.1: HTTP/1.0 has no transfer codings, and a length
    // beside one is how requests are smuggled past a proxy.
    if (received.substr(0, request_line_end).ends_with(" HTTP/1.0\r\n")) {
      frame.kind = RequestFrame::Kind::kCodingInHttp10;
    } else if (length_lines > 0) {
      frame.kind = RequestFrame::Kind::kCodingAndLength;
    } else if (coding_lines > 1 || !chunked) {
      frame.kind = RequestFrame::Kind::kUnsupportedCoding;
    } else {
      frame.kind = RequestFrame::Kind::kChunked;
      frame.length = header_end;
    }
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
