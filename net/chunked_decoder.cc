#include "net/chunked_decoder.h"

#include <algorithm>
#include <charconv>

#include "net/request_framing.h"

namespace shardctl::net {
namespace {

// Fifteen hex digits at most: a size that cannot overflow.
constexpr size_t kMaxSizeDigits = 15;

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// A control character other than tab. A lone CR or a NUL inside a size line
// is where decoders disagree about where the line ends.
bool IsControl(char c) {
  auto byte = static_cast<unsigned char>(c);
  return (byte < 0x20 && c != '\t') || byte == 0x7f;
}

}  // namespace

ChunkedDecoder::State ChunkedDecoder::state() const {
  switch (phase_) {
    case Phase::kDone: return State::kDone;
    case Phase::kBad: return State::kBad;
    default: return State::kMore;
  }
}

size_t ChunkedDecoder::Decode(std::string_view input, std::string* data) {
  size_t used = 0;
  while (used < input.size() && state() == State::kMore) {
    if (phase_ == Phase::kData) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(data_left_, input.size() - used));
      if (data != nullptr) data->append(input.substr(used, take));
      used += take;
      data_left_ -= take;
      data_bytes_ += take;
      if (data_left_ == 0) phase_ = Phase::kDataEnd;
      continue;
    }
    size_t newline = input.find('\n', used);
    size_t end = newline == std::string_view::npos ? input.size() : newline;
    line_.append(input.substr(used, end - used));
    size_t line_end = newline == std::string_view::npos ? input.size() : newline + 1;
    framing_bytes_ += line_end - used;
    used = line_end;
    // + 1: the CR of its CRLF. The end of a chunk's data is that CRLF alone.
    if (line_.size() > (phase_ == Phase::kDataEnd ? 1 : kMaxLineBytes + 1)) {
      phase_ = Phase::kBad;
    } else if (newline != std::string_view::npos) {
      if (line_.empty() || line_.back() != '\r') {  // lines end in CRLF
        phase_ = Phase::kBad;
      } else {
        line_.pop_back();
        EndLine();
      }
    }
  }
  return used;
}

void ChunkedDecoder::EndLine() {
  if (std::any_of(line_.begin(), line_.end(), IsControl)) {
    phase_ = Phase::kBad;
    line_.clear();
    return;
  }
  switch (phase_) {
    case Phase::kSizeLine: {
      // "1a3;name=value": the size in hex, then extensions we do not use,
      // after optional spaces or tabs (RFC 9112's BWS).
      std::string_view line = line_;
      size_t digits = 0;
      while (digits < line.size() && IsHexDigit(line[digits])) ++digits;
      std::string_view rest = TrimSpacesAndTabs(line.substr(digits));
      uint64_t size = 0;
      if (digits == 0 || digits > kMaxSizeDigits || (!rest.empty() && rest.front() != ';')) {
        phase_ = Phase::kBad;
        break;
      }
      std::from_chars(line.data(), line.data() + digits, size, 16);  // hex digits only: no error
      data_left_ = size;
      phase_ = size == 0 ? Phase::kTrailer : Phase::kData;
      break;
    }
    case Phase::kDataEnd: phase_ = line_.empty() ? Phase::kSizeLine : Phase::kBad; break;
    case Phase::kTrailer:
      if (line_.empty()) phase_ = Phase::kDone;  // else a trailer field: dropped
      break;
    default: break;
  }
  line_.clear();
}

}  // namespace shardctl::net
