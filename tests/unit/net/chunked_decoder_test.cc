#include "net/chunked_decoder.h"

#include <string>

#include <gtest/gtest.h>

namespace shardctl::net {
namespace {

using namespace std::string_literals;
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
      {"a bare LF after data", "1\r\nx\n0\r\n\r\n", "x", State::kBad, 0},
      {"a bare LF ending the trailer", "1\r\nx\r\n0\r\n\n", "x", State::kBad, 0},
      {"spaces before an extension", "1 \t;a=b\r\nx\r\n0 \r\n\r\n", "x", State::kDone, 18},
      {"a quoted extension holding a semicolon", "1;a=\"x;y\"\r\nx\r\n0\r\n\r\n", "x", State::kDone,
       19},
      {"a space before the size", " 1\r\nx\r\n0\r\n\r\n", "", State::kBad, 0},
      {"a space inside the size", "1 0\r\n", "", State::kBad, 0},
      {"a plus sign", "+1\r\nx\r\n", "", State::kBad, 0},
      {"an underscore", "1_0\r\n", "", State::kBad, 0},
      {"fifteen digits", "000000000000001\r\nx\r\n0\r\n\r\n", "x", State::kDone, 25},
      {"sixteen digits", "0000000000000001\r\nx\r\n0\r\n\r\n", "", State::kBad, 0},
      {"the largest 64-bit size", "ffffffffffffffff\r\n", "", State::kBad, 0},
      {"a lone CR in a size line", "1\r;a\r\nx\r\n0\r\n\r\n", "", State::kBad, 0},
      {"a NUL in an extension", "1;a\0b\r\nx\r\n0\r\n\r\n"s, "", State::kBad, 0},
      {"a control character in a trailer field", "0\r\nX: a\x01b\r\n\r\n", "", State::kBad, 0},
      {"a trailer field", "0\r\nX-Checksum: 1\r\n\r\n", "", State::kDone, 20},
      {"no CRLF after the data, more bytes instead", "1\r\nxyz", "x", State::kBad, 0},
      {"an extension line at the longest",
       "1;" + std::string(ChunkedDecoder::kMaxLineBytes - 2, 'e') + "\r\nx\r\n0\r\n\r\n", "x",
       State::kDone, ChunkedDecoder::kMaxLineBytes + 10},
      {"an extension line a byte too long",
       "1;" + std::string(ChunkedDecoder::kMaxLineBytes - 1, 'e') + "\r\nx\r\n0\r\n\r\n", "",
       State::kBad, 0},
      {"an endless extension line", "1;" + std::string(100'000, 'e'), "", State::kBad, 0},
      {"a trailer line too long",
       "0\r\nX: " + std::string(ChunkedDecoder::kMaxLineBytes, 't') + "\r\n\r\n", "", State::kBad,
       0},
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

TEST(ChunkedDecoderTest, CountsDataAndFramingAndDropsDataWhenAskedTo) {
  const std::string body = "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nT: x\r\n\r\n";
  ChunkedDecoder kept;
  std::string data;
  EXPECT_EQ(kept.Decode(body, &data), body.size());
  EXPECT_EQ(kept.state(), State::kDone);
  EXPECT_EQ(data, "abcde");
  EXPECT_EQ(kept.data_bytes(), 5u);
  EXPECT_EQ(kept.framing_bytes(), body.size() - 5);

  ChunkedDecoder dropped;
  EXPECT_EQ(dropped.Decode(body, nullptr), body.size());
  EXPECT_EQ(dropped.state(), State::kDone);
  EXPECT_EQ(dropped.data_bytes(), 5u);
  EXPECT_EQ(dropped.framing_bytes(), body.size() - 5);
}

TEST(ChunkedDecoderTest, AnnouncesTheDataOfTheChunkBeingRead) {
  ChunkedDecoder decoder;
  std::string data;
  decoder.Decode("3\r\nabc\r\n10000\r\nxy", &data);
  EXPECT_EQ(decoder.data_bytes(), 5u);
  EXPECT_EQ(decoder.announced_data_bytes(), 3u + 0x10000);
}

TEST(ChunkedDecoderTest, ManyTinyChunksCostFramingBytes) {
  std::string body;
  for (int i = 0; i < 1000; ++i) body += "1\r\nx\r\n";
  ChunkedDecoder decoder;
  std::string data;
  decoder.Decode(body, &data);
  EXPECT_EQ(decoder.state(), State::kMore);
  EXPECT_EQ(decoder.data_bytes(), 1000u);
  EXPECT_EQ(decoder.framing_bytes(), 5000u);
}

}  // namespace
}  // namespace shardctl::net
