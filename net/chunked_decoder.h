// ChunkedDecoder: the body of an HTTP/1.1 answer in the chunked transfer
// coding (RFC 9112 section 7.1), decoded as its bytes arrive. Servers written
// in Go (etcd) send every answer of more than 2 KB this way, and etcd's watch
// as a chunked stream that never ends. Not thread-safe: one per answer.
#ifndef SHARDCTL_NET_CHUNKED_DECODER_H_
#define SHARDCTL_NET_CHUNKED_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardctl::net {

class ChunkedDecoder {
 public:
  enum class State {
    kMore,  // the body goes on: decode more bytes
    kDone,  // the last chunk and the trailer section are in
    kBad,   // not the chunked coding (a bad size line, a chunk without its CRLF, ...)
  };

  // Decodes `input`, the bytes that follow those decoded before, appending
  // the data they carry to `*data`, up to the end of the body. Returns how
  // many bytes of `input` belong to the body (all of them unless the body
  // ended or went bad within them). Chunk extensions and trailer fields are
  // read and dropped. REQUIRES: state() == State::kMore.
  size_t Decode(std::string_view input, std::string* data);

  State state() const;

 private:
  enum class Phase { kSizeLine, kData, kDataEnd, kTrailer, kDone, kBad };
  // Acts on the line in `line_` (its CRLF removed) and clears it.
  void EndLine();

  Phase phase_ = Phase::kSizeLine;
  uint64_t data_left_ = 0;  // in the chunk being read
  std::string line_;        // the part of a size, end-of-data or trailer line read so far
};

}  // namespace shardctl::net

#endif  // SHARDCTL_NET_CHUNKED_DECODER_H_
