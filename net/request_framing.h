// FrameRequest: where one HTTP/1.1 request ends in the bytes received so far,
// judged from its header alone (a chunked body, whose end its header does not
// tell, is then decoded with net/chunked_decoder.h); ParseRequestHead: its
// request line and header lines. The server runs a handler only for a
// complete request, so a slow or idle client never holds a thread, and
// refuses what lenient parsers (cpp-httplib 0.11.4 among them) would read
// differently from a proxy. Pure functions; thread-safe.
#ifndef SHARDCTL_NET_REQUEST_FRAMING_H_
#define SHARDCTL_NET_REQUEST_FRAMING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardctl::net {

struct RequestFrame {
  enum class Kind {
    kIncomplete,      // more bytes are needed
    kComplete,        // the first `length` bytes hold one whole request
    kHeaderTooLarge,  // the header is longer than allowed (431)
    kBodyTooLarge,    // Content-Length is larger than allowed (413)
    kBadLength,       // Content-Length is not one plain decimal number (400)
    kBadHeader,       // a malformed request line or header line (400)
    kRange,           // a Range header: not supported (416)
    // "Transfer-Encoding: chunked" (once, any case): the header is in and the
    // body follows in the chunked coding, to be decoded to find its end.
    kChunked,
    kUnsupportedCoding,  // any other Transfer-Encoding, or more than one (501)
    kCodingAndLength,    // both Transfer-Encoding and Content-Length (400)
    kCodingInHttp10,     // Transfer-Encoding in an HTTP/1.0 request (400)
  };
  Kind kind = Kind::kIncomplete;
  // kComplete: header plus body. kBodyTooLarge, kChunked: the header alone.
  // kIncomplete: once the header is in, the length the whole request will
  // have; 0 before.
  size_t length = 0;
  // The declared Content-Length (0 when absent).
  uint64_t body_bytes = 0;
  // Once the header is in: its length, blank line included.
  size_t header_length = 0;
};

// Returns the offset just past the blank line that ends the header in
// `received` (request line and header lines end at '\n'; the blank line is
// "\r\n"), or std::string_view::npos if it has not arrived. `from`: a length
// of `received` already known to hold no end, so a header arriving a byte at
// a time is not scanned again from the start.
size_t FindHeaderEnd(std::string_view received, size_t from = 0);

// True if the request header at the start of `received` (whole, as
// FindHeaderEnd finds it) has "Expect: 100-continue": its client waits for
// an interim "100 Continue" answer before it sends the body. Always false
// for HTTP/1.0, which has no interim answers (RFC 9110 section 10.1.1).
bool ExpectsContinue(std::string_view received);

// Frames the request at the start of `received`. A header without
// Content-Length or Transfer-Encoding means no body (RFC 9112 section 6.3).
// Transfer-Encoding is accepted as "chunked" alone, on HTTP/1.1, without a
// Content-Length (kChunked); anything else that could leave a proxy and this
// server disagreeing about where the body ends is refused (request
// smuggling): every Transfer-Encoding and Content-Length line counts, even
// with an empty value. Strict where cpp-httplib is lenient in ways that could
// hide a Content-Length from it (RFC 9112 sections 2.2, 5.1, 5.2): a line
// not ending in CRLF, whitespace before a colon, a line without a colon, a
// folded line, or a control character (NUL included) is kBadHeader.
RequestFrame FrameRequest(std::string_view received, size_t max_header_bytes,
                          size_t max_body_bytes);

// The request line and header lines of a request that FrameRequest found
// complete. Views into the received bytes.
struct RequestHead {
  std::string_view method;
  std::string_view target;  // as sent: path, then "?query" if any
  int minor_version = 1;    // HTTP/1.<minor_version>
  // Name and value of each header line with a value, in order; values
  // without surrounding spaces and tabs.
  std::vector<std::pair<std::string_view, std::string_view>> headers;

  // The first value of header `name` (any case), or nullptr.
  const std::string_view* Find(std::string_view name) const;
  // How many header lines are named `name` (any case).
  size_t Count(std::string_view name) const;
  // True if a header line named `name` lists `token` among its
  // comma-separated values (any case), as in "Connection: keep-alive, close".
  bool HasToken(std::string_view name, std::string_view token) const;
};

// Reads the request line and header lines of `header` (a request's bytes up
// to and including its blank line, already checked by FrameRequest) into
// `head`, reusing its storage. Returns false if the request line is not
// "METHOD SP /target SP HTTP/1.0|1.1".
bool ParseRequestHead(std::string_view header, RequestHead* head);

// Reads the header lines in `lines` (each ending in CRLF; the blank line
// that ends a header may follow) into `headers`, reusing its storage: name,
// and value without surrounding spaces and tabs. Lines without a colon are
// skipped; so are lines with an empty value when `drop_empty` is set.
void ParseHeaderLines(std::string_view lines, bool drop_empty,
                      std::vector<std::pair<std::string_view, std::string_view>>* headers);

// `text` without leading and trailing spaces and tabs.
std::string_view TrimSpacesAndTabs(std::string_view text);

// True if `a` and `b` are equal when ASCII letters are compared without case.
bool EqualsIgnoringCase(std::string_view a, std::string_view b);

// `text` with each %XX decoded (and, if `plus_is_space`, each '+' made a
// space); a '%' not followed by two hex digits is kept as it is.
std::string DecodePercent(std::string_view text, bool plus_is_space);

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_REQUEST_FRAMING_H_
