// ChunkedDecoder: a body in the chunked transfer coding (RFC 9112 section
// 7.1), decoded as its bytes arrive: the answers of servers written in Go
// (etcd sends every answer of more than 2 KB this way, and its watch as a
// chunked stream that never ends), and the request bodies of clients that do
// not know their length in advance (Python's http.client with
// encode_chunked=True, Node's fetch with a stream body, curl with
// "Transfer-Encoding: chunked"). Not thread-safe: one per body.
#ifndef SHARDCTL_NET_CHUNKED_DECODER_H_
#define SHARDCTL_NET_CHUNKED_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardctl::net {

class ChunkedDecoder {
 public:
  // The longest size line (extensions included) or trailer field line, CRLF
  // excluded; a longer one is kBad, so a line is never buffered without limit.
  static constexpr size_t kMaxLineBytes = 8 * 1024;

  enum class State {
    kMore,  // the body goes on: decode more bytes
    kDone,  // the last chunk and the trailer section are in
    kBad,   // not the chunked coding (a bad size line, a chunk without its CRLF, ...)
  };

  // Decodes `input`, the bytes that follow those decoded before, appending
  // the data they carry to `*data` (or dropping it if `data` is nullptr), up
  // to the end of the body. Returns how many bytes of `input` belong to the
  // body (all of them unless the body ended or went bad within them). Strict
  // where lenient decoders differ (request smuggling): a size is hex digits
  // only, from the start of its line (no sign, no "0x", no leading space, at
  // most 15 digits); every line ends in CRLF and holds no control character
  // but tab. Chunk extensions and trailer fields are read and dropped.
  // REQUIRES: state() == State::kMore.
  size_t Decode(std::string_view input, std::string* data);

  State state() const;
  // Bytes of chunk data decoded so far (appended or dropped).
  uint64_t data_bytes() const { return data_bytes_; }
  // data_bytes() and the rest of the chunk being read, as its size line
  // announced it: a body too large is known before its data comes.
  uint64_t announced_data_bytes() const { return data_bytes_ + data_left_; }
  // Bytes decoded so far that were not chunk data: size lines with their
  // extensions, the CRLFs after data, the trailer section.
  uint64_t framing_bytes() const { return framing_bytes_; }

 private:
  enum class Phase { kSizeLine, kData, kDataEnd, kTrailer, kDone, kBad };
  // Acts on the line in `line_` (its CRLF removed) and clears it.
  void EndLine();

  Phase phase_ = Phase::kSizeLine;
  uint64_t data_left_ = 0;  // in the chunk being read
  std::string line_;        // the part of a size, end-of-data or trailer line read so far
  uint64_t data_bytes_ = 0;
  uint64_t framing_bytes_ = 0;
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_CHUNKED_DECODER_H_
