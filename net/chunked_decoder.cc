#include "net/chunked_decoder.h"

#include <algorithm>
#include <charconv>

#include "net/request_framing.h"

namespace shardctl::net {
namespace {

// Longer size or trailer lines are not an answer shardctl talks to.
constexpr size_t kMaxLineBytes = 8 * 1024;
// Fifteen hex digits at most: a size that cannot overflow.
constexpr size_t kMaxSizeDigits = 15;

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
      data->append(input.substr(used, take));
      used += take;
      data_left_ -= take;
      if (data_left_ == 0) phase_ = Phase::kDataEnd;
      continue;
    }
    size_t newline = input.find('\n', used);
    size_t end = newline == std::string_view::npos ? input.size() : newline;
    line_.append(input.substr(used, end - used));
    used = newline == std::string_view::npos ? input.size() : newline + 1;
    if (line_.size() > kMaxLineBytes) {
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
  switch (phase_) {
    case Phase::kSizeLine: {
      // "1a3;name=value": the size in hex, then extensions we do not use.
      std::string_view digits =
          TrimSpacesAndTabs(std::string_view(line_).substr(0, line_.find(';')));
      uint64_t size = 0;
      auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), size, 16);
      if (digits.empty() || digits.size() > kMaxSizeDigits || error != std::errc() ||
          end != digits.data() + digits.size()) {
        phase_ = Phase::kBad;
      } else {
        data_left_ = size;
        phase_ = size == 0 ? Phase::kTrailer : Phase::kData;
      }
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
