#include "net/request_framing.h"

#include <string>

#include <gtest/gtest.h>

namespace shardctl::net {
namespace {

using Kind = RequestFrame::Kind;

constexpr size_t kMaxHeader = 256;
constexpr size_t kMaxBody = 100;

RequestFrame Frame(const std::string& received) {
  return FrameRequest(received, kMaxHeader, kMaxBody);
}

struct Case {
  std::string name;
  std::string received;
  Kind kind;
  size_t length;
};

TEST(FrameRequestTest, FramesRequestsAsHttplibReadsThem) {
  const std::string post = "POST /increment HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
  const Case cases[] = {
      {"nothing yet", "", Kind::kIncomplete, 0},
      {"half a request line", "GET /tot", Kind::kIncomplete, 0},
      {"header not ended", "GET /total HTTP/1.1\r\nHost: x\r\n", Kind::kIncomplete, 0},
      {"get", "GET /total HTTP/1.1\r\n\r\n", Kind::kComplete, 23},
      {"get with headers", "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\n", Kind::kComplete, 33},
      {"pipelined: the first only", "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", Kind::kComplete,
       18},
      {"body not yet in", post + "{\"val", Kind::kIncomplete, post.size() + 11},
      {"body in", post + "{\"value\":1}", Kind::kComplete, post.size() + 11},
      {"body and more", post + "{\"value\":1}GET", Kind::kComplete, post.size() + 11},
      {"no length: no body", "POST / HTTP/1.1\r\n\r\n{\"value\":1}", Kind::kComplete, 19},
      {"length any case", "POST / HTTP/1.1\r\ncOnTeNt-LeNgTh:  2 \r\n\r\nab", Kind::kComplete, 42},
      {"two equal lengths", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
       Kind::kComplete, 59},
      {"two lengths", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
       Kind::kBadLength, 0},
      {"signed length", "POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\nab", Kind::kBadLength, 0},
      {"hex length", "POST / HTTP/1.1\r\nContent-Length: 0x2\r\n\r\nab", Kind::kBadLength, 0},
      {"escaped length", "POST / HTTP/1.1\r\nContent-Length: %32\r\n\r\nab", Kind::kBadLength, 0},
      {"huge length", "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
       Kind::kBadLength, 0},
      {"body over the limit", "POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", Kind::kBodyTooLarge,
       40},
      {"body at the limit",
       "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'x'), Kind::kComplete,
       140},
      // httplib would skip these lines, and with them a Content-Length.
      {"bare LF line", "POST / HTTP/1.1\r\nContent-Length: 5\n\r\n", Kind::kBadHeader, 0},
      {"space before colon", "POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", Kind::kBadHeader, 0},
      {"no colon", "GET / HTTP/1.1\r\nNoColon\r\n\r\n", Kind::kBadHeader, 0},
      {"empty name", "GET / HTTP/1.1\r\n: x\r\n\r\n", Kind::kBadHeader, 0},
      {"folded line", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", Kind::kBadHeader, 0},
      {"NUL in a value", std::string("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 26), Kind::kBadHeader, 0},
      {"NUL in the request line", std::string("GET /\0 HTTP/1.1\r\n\r\n", 19), Kind::kBadHeader, 0},
      {"bare LF request line", "GET / HTTP/1.1\n\r\n", Kind::kBadHeader, 0},
      {"tab in a value", "GET / HTTP/1.1\r\nA: b\tc\r\n\r\n", Kind::kComplete, 26},
      {"obs-text in a value", "GET / HTTP/1.1\r\nA: caf\xc3\xa9\r\n\r\n", Kind::kComplete, 28},
      {"range", "GET / HTTP/1.1\r\nrange: bytes=0-1\r\n\r\n", Kind::kRange, 0},
      {"empty value dropped", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", Kind::kComplete, 36},
      {"header too large", "GET / HTTP/1.1\r\nA: " + std::string(300, 'a') + "\r\n\r\n",
       Kind::kHeaderTooLarge, 0},
      {"unended header too large", "GET / HTTP/1.1\r\nA: " + std::string(300, 'a'),
       Kind::kHeaderTooLarge, 0},
      {"empty request line", "\r\n\r\n", Kind::kComplete, 4},
      {"empty value", "GET / HTTP/1.1\r\nA:\r\n\r\n", Kind::kComplete, 22},
  };
  for (const Case& c : cases) {
    RequestFrame frame = Frame(c.received);
    EXPECT_EQ(frame.kind, c.kind) << c.name;
    EXPECT_EQ(frame.length, c.length) << c.name;
  }
}

TEST(FrameRequestTest, TakesChunkedAloneOnHttp11AndRefusesEveryOtherTransferEncoding) {
  const std::string post = "POST / HTTP/1.1\r\n";
  const Case cases[] = {
      {"chunked: the header's length", post + "Transfer-Encoding: chunked\r\n\r\n5\r\n",
       Kind::kChunked, 47},
      {"chunked, any case and spacing", post + "transfer-ENCODING:  Chunked \r\nHost: x\r\n\r\n",
       Kind::kChunked, 58},
      {"chunked, header not ended", post + "Transfer-Encoding: chunked\r\n", Kind::kIncomplete, 0},
      {"gzip", post + "Transfer-Encoding: gzip\r\n\r\n", Kind::kUnsupportedCoding, 0},
      {"identity", post + "Transfer-Encoding: identity\r\n\r\n", Kind::kUnsupportedCoding, 0},
      {"gzip, chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n", Kind::kUnsupportedCoding,
       0},
      {"chunked, gzip", post + "Transfer-Encoding: chunked, gzip\r\n\r\n", Kind::kUnsupportedCoding,
       0},
      {"chunked twice in one line", post + "Transfer-Encoding: chunked, chunked\r\n\r\n",
       Kind::kUnsupportedCoding, 0},
      {"two lines", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       Kind::kUnsupportedCoding, 0},
      {"gzip line, then chunked line",
       post + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
       Kind::kUnsupportedCoding, 0},
      {"empty value", post + "Transfer-Encoding:\r\n\r\n", Kind::kUnsupportedCoding, 0},
      {"a quoted chunked", post + "Transfer-Encoding: \"chunked\"\r\n\r\n",
       Kind::kUnsupportedCoding, 0},
      {"chunked with a length", post + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
       Kind::kCodingAndLength, 0},
      {"chunked, then a length",
       post + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", Kind::kCodingAndLength,
       0},
      {"chunked with an empty length",
       post + "Content-Length:\r\nTransfer-Encoding: chunked\r\n\r\n", Kind::kCodingAndLength, 0},
      {"gzip with a length", post + "Content-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\nabc",
       Kind::kCodingAndLength, 0},
      {"HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       Kind::kCodingInHttp10, 0},
      {"HTTP/1.0 with gzip", "POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n",
       Kind::kCodingInHttp10, 0},
      {"a name that only contains it", post + "X-Transfer-Encoding: gzip\r\n\r\n", Kind::kComplete,
       46},
      {"space before the colon", post + "Transfer-Encoding : chunked\r\n\r\n", Kind::kBadHeader, 0},
  };
  for (const Case& c : cases) {
    RequestFrame frame = Frame(c.received);
    EXPECT_EQ(frame.kind, c.kind) << c.name;
    EXPECT_EQ(frame.length, c.length) << c.name;
    if (c.kind == Kind::kChunked) {
      EXPECT_EQ(frame.header_length, c.length) << c.name;
    }
  }
}

TEST(FrameRequestTest, ReportsTheDeclaredBodyLength) {
  EXPECT_EQ(Frame("POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n").body_bytes, 5000u);
  EXPECT_EQ(Frame("GET / HTTP/1.1\r\n\r\n").body_bytes, 0u);
}

TEST(ExpectsContinueTest, NeverForHttp10) {
  EXPECT_FALSE(ExpectsContinue("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_TRUE(ExpectsContinue("POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"));
}

TEST(ExpectsContinueTest, FindsTheHeaderWhateverItsCase) {
  EXPECT_TRUE(ExpectsContinue("POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_TRUE(ExpectsContinue("POST / HTTP/1.1\r\nHost: a\r\nEXPECT:  100-Continue \r\n\r\n{"));
  EXPECT_FALSE(ExpectsContinue("POST / HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_FALSE(ExpectsContinue("POST / HTTP/1.1\r\nExpect: 100-continue\r\n"));  // header not in
  EXPECT_FALSE(ExpectsContinue("POST / HTTP/1.1\r\nX-Expect: 100-continue\r\n\r\n"));
  EXPECT_FALSE(ExpectsContinue("POST / HTTP/1.1\r\nExpect: something\r\n\r\n"));
}

TEST(ParseRequestHeadTest, ReadsTheRequestLineAndTheHeaderLinesWithValues) {
  RequestHead head;
  ASSERT_TRUE(ParseRequestHead(
      "POST /increment?x=1 HTTP/1.0\r\nHost: a\r\nX-Empty:  \r\nContent-Length:\t11 \r\n\r\n",
      &head));
  EXPECT_EQ(head.method, "POST");
  EXPECT_EQ(head.target, "/increment?x=1");
  EXPECT_EQ(head.minor_version, 0);
  ASSERT_EQ(head.headers.size(), 2u);  // a header without a value is dropped
  ASSERT_NE(head.Find("content-length"), nullptr);
  EXPECT_EQ(*head.Find("CONTENT-LENGTH"), "11");
  EXPECT_EQ(head.Count("host"), 1u);
  EXPECT_EQ(head.Find("X-Empty"), nullptr);
}

TEST(ParseRequestHeadTest, FindsATokenInACommaSeparatedListOfAnyHeaderLine) {
  RequestHead head;
  ASSERT_TRUE(ParseRequestHead(
      "GET / HTTP/1.1\r\nConnection: keep-alive ,Upgrade\r\nconnection: CLOSE\r\n\r\n", &head));
  EXPECT_TRUE(head.HasToken("Connection", "close"));
  EXPECT_TRUE(head.HasToken("connection", "upgrade"));
  EXPECT_TRUE(head.HasToken("Connection", "Keep-Alive"));
  EXPECT_FALSE(head.HasToken("Connection", "keep"));
  EXPECT_FALSE(head.HasToken("Expect", "close"));
}

TEST(ParseRequestHeadTest, RefusesAnythingButMethodPathAndHttp1) {
  RequestHead head;
  for (const char* line : {"GET /total HTTP/2.0", "GET total HTTP/1.1", "GET /total",
                           "/total HTTP/1.1", "GET  /total HTTP/1.1", "G{T /total HTTP/1.1",
                           "GET http://x/total HTTP/1.1", "GET /a b HTTP/1.1"}) {
    EXPECT_FALSE(ParseRequestHead(std::string(line) + "\r\n\r\n", &head)) << line;
  }
  EXPECT_TRUE(ParseRequestHead("GET /total HTTP/1.1\r\n\r\n", &head));
}

TEST(ParseHeaderLinesTest, TrimsValuesSkipsLinesWithoutAColonAndDropsEmptyOnesOnlyIfAsked) {
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view lines = "A: 1 \r\nno colon\r\nB:\t\r\nC:x:y\r\n\r\n";
  ParseHeaderLines(lines, /*drop_empty=*/false, &headers);
  using Headers = std::vector<std::pair<std::string_view, std::string_view>>;
  EXPECT_EQ(headers, (Headers{{"A", "1"}, {"B", ""}, {"C", "x:y"}}));
  ParseHeaderLines(lines, /*drop_empty=*/true, &headers);
  EXPECT_EQ(headers, (Headers{{"A", "1"}, {"C", "x:y"}}));
}

TEST(DecodePercentTest, DecodesEscapesAndKeepsStrayPercents) {
  EXPECT_EQ(DecodePercent("/tot%61l", false), "/total");
  EXPECT_EQ(DecodePercent("a+b%2Bc", true), "a b+c");
  EXPECT_EQ(DecodePercent("a+b", false), "a+b");
  EXPECT_EQ(DecodePercent("100%", true), "100%");
  EXPECT_EQ(DecodePercent("%zz%4", true), "%zz%4");
}

TEST(FindHeaderEndTest, ResumesWhereItLeftOff) {
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  for (size_t from = 0; from <= request.size() - 1; ++from) {
    // Whatever was scanned before (without the end in it), the end is found.
    EXPECT_EQ(FindHeaderEnd(request, std::min(from, request.size() - 1)), request.size()) << from;
  }
  EXPECT_EQ(FindHeaderEnd("GET / HTTP/1.1\r\nHost: x\r\n"), std::string::npos);
}

}  // namespace
}  // namespace shardctl::net
