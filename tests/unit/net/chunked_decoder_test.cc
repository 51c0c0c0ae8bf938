#include "net/chunked_decoder.h"

#include <string>

#include <gtest/gtest.h>

namespace shardctl::net {
namespace {

using State = ChunkedDecoder::State;

struct ChunkedCase {
  const char* name;
  std::string input;
  std::string data;
  State state;
  size_t used;  // for kDone: the bytes that belong to the body
};

TEST(ChunkedDecoderTest, DecodesWholeOrAByteAtATime) {
  const ChunkedCase cases[] = {
      {"one chunk", "2\r\n{}\r\n0\r\n\r\n", "{}", State::kDone, 12},
      {"chunks with extensions and trailer fields (etcd's errors)",
       "3;name=value\r\nabc\r\nA\r\n0123456789\r\n0\r\nGrpc-Trailer-Content-Type: x\r\n\r\n",
       "abc0123456789", State::kDone, 69},
      {"upper and lower case hex", "a\r\n0123456789\r\nB\r\n0123456789a\r\n0\r\n\r\n",
       "01234567890123456789a", State::kDone, 36},
      {"the bytes after the body are not used", "1\r\nx\r\n0\r\n\r\nHTTP/1.1", "x", State::kDone,
       11},
      {"a stream still going", "5\r\nabcde\r\n3\r\nfg", "abcdefg", State::kMore, 0},
      {"not hex", "z\r\nx\r\n", "", State::kBad, 0},
      {"no size", "\r\nx\r\n", "", State::kBad, 0},
      {"a sign", "-1\r\n", "", State::kBad, 0},
      {"a 0x prefix", "0x1\r\nx\r\n", "", State::kBad, 0},
      {"a size too large", "10000000000000000\r\n", "", State::kBad, 0},
      {"data longer than its size", "1\r\nxy\r\n0\r\n\r\n", "x", State::kBad, 0},
      {"a bare LF", "1\nx\r\n0\r\n\r\n", "", State::kBad, 0},
  };
  for (const ChunkedCase& c : cases) {
    SCOPED_TRACE(c.name);
    ChunkedDecoder whole;
    std::string data;
    size_t used = whole.Decode(c.input, &data);
    EXPECT_EQ(whole.state(), c.state);
    EXPECT_EQ(data, c.data);
    if (c.state != State::kBad) {
      EXPECT_EQ(used, c.state == State::kDone ? c.used : c.input.size());
    }

    ChunkedDecoder bytewise;
    std::string bytewise_data;
    for (char byte : c.input) {
      if (bytewise.state() != State::kMore) break;
      bytewise.Decode(std::string_view(&byte, 1), &bytewise_data);
    }
    EXPECT_EQ(bytewise.state(), c.state);
    EXPECT_EQ(bytewise_data, c.data);
  }
}

}  // namespace
}  // namespace shardctl::net
