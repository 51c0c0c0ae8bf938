#include "core/protocol.h"

#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// --- ParseIncrementRequest -------------------------------------------------

struct GoodRequestCase {
  std::string body;
  int64_t expected_value;
};

TEST(ParseIncrementRequestTest, AcceptsObjectsWithAnInt64Value) {
  const GoodRequestCase cases[] = {
      {R"({"value":5})", 5},
      {R"({"value":-3})", -3},
      {R"({"value":0})", 0},
      {R"({"value":-0})", 0},
      {R"({ "value" : 7 })", 7},
      {"\n{\"value\":\t8}\n", 8},
      {R"({"value":9223372036854775807})", kMax},
      {R"({"value":-9223372036854775808})", kMin},
  };
  for (const GoodRequestCase& c : cases) {
    SCOPED_TRACE("body: " + c.body);
    Result<IncrementRequest> request = ParseIncrementRequest(c.body);
    ASSERT_TRUE(request.ok()) << request.status().message();
    EXPECT_EQ(request->value, c.expected_value);
  }
}

TEST(ParseIncrementRequestTest, MissingValueMeansOne) {
  const std::string cases[] = {"{}", " { } ", "", " ", "\n", " \t\r\n "};
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: '" + body + "'");
    Result<IncrementRequest> request = ParseIncrementRequest(body);
    ASSERT_TRUE(request.ok()) << request.status().message();
    EXPECT_EQ(request->value, 1);
  }
}

struct BadRequestCase {
  std::string body;
  std::string message_part;  // a piece of the message that says what was wrong
};

TEST(ParseIncrementRequestTest, RefusesBodiesThatAreNotAJsonObject) {
  const BadRequestCase cases[] = {
      {"not json", "not valid JSON"},
      {"{", "not valid JSON"},
      {R"({"value":5)", "not valid JSON"},
      {R"({"value":5}})", "not valid JSON"},
      {R"({"value":5} trailing)", "not valid JSON"},
      {R"({'value':5})", "not valid JSON"},
      {R"({value:5})", "not valid JSON"},
      {R"({"value":5,})", "not valid JSON"},
      {"[1]", "must be a JSON object"},
      {"[]", "must be a JSON object"},
      {R"("5")", "must be a JSON object"},
      {"5", "must be a JSON object"},
      {"true", "must be a JSON object"},
      {"null", "must be a JSON object"},
  };
  for (const BadRequestCase& c : cases) {
    SCOPED_TRACE("body: " + c.body);
    Result<IncrementRequest> request = ParseIncrementRequest(c.body);
    ASSERT_FALSE(request.ok()) << "accepted with value " << request->value;
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument);
    EXPECT_NE(request.status().message().find(c.message_part), std::string::npos)
        << request.status().message();
  }
}

TEST(ParseIncrementRequestTest, RefusesAValueThatIsNotAnInteger) {
  const std::string cases[] = {
      R"({"value":1.5})",   R"({"value":-1.5})", R"({"value":"5"})", R"({"value":true})",
      R"({"value":false})", R"({"value":null})", R"({"value":[1]})", R"({"value":{}})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<IncrementRequest> request = ParseIncrementRequest(body);
    ASSERT_FALSE(request.ok()) << "accepted with value " << request->value;
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument);
    EXPECT_NE(request.status().message().find("must be an integer"), std::string::npos)
        << request.status().message();
  }
}

TEST(ParseIncrementRequestTest, RefusesAValueOutsideInt64) {
  const std::string cases[] = {
      R"({"value":9223372036854775808})",  R"({"value":-9223372036854775809})",
      R"({"value":18446744073709551615})", R"({"value":18446744073709551616})",
      R"({"value":99999999999999999999})", R"({"value":-99999999999999999999})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<IncrementRequest> request = ParseIncrementRequest(body);
    ASSERT_FALSE(request.ok()) << "accepted with value " << request->value;
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument);
    EXPECT_NE(request.status().message().find("64-bit"), std::string::npos)
        << request.status().message();
  }
}

TEST(ParseIncrementRequestTest, RefusesAnUnknownField) {
  const std::string cases[] = {
      R"({"count":5})",
      R"({"value":5,"extra":1})",
      R"({"Value":5})",
      R"({"":5})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<IncrementRequest> request = ParseIncrementRequest(body);
    ASSERT_FALSE(request.ok()) << "accepted with value " << request->value;
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument);
    EXPECT_NE(request.status().message().find("unknown field"), std::string::npos)
        << request.status().message();
  }
}

TEST(ParseIncrementRequestTest, UnknownFieldMessageNamesTheField) {
  Result<IncrementRequest> request = ParseIncrementRequest(R"({"valeu":5})");
  ASSERT_FALSE(request.ok());
  EXPECT_NE(request.status().message().find("\"valeu\""), std::string::npos)
      << request.status().message();
}

TEST(FormatIncrementRequestTest, RoundTripsThroughParse) {
  for (int64_t value : {kMin, int64_t{-1}, int64_t{0}, int64_t{1}, int64_t{42}, kMax}) {
    SCOPED_TRACE(testing::Message() << "value " << value);
    std::string body = FormatIncrementRequest(IncrementRequest{value});
    Result<IncrementRequest> parsed = ParseIncrementRequest(body);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(parsed->value, value);
  }
}

TEST(FormatIncrementRequestTest, WritesTheValueField) {
  EXPECT_EQ(FormatIncrementRequest(IncrementRequest{5}), R"({"value":5})");
  EXPECT_EQ(FormatIncrementRequest(IncrementRequest{-3}), R"({"value":-3})");
}

// --- Replies ---------------------------------------------------------------

TEST(FormatIncrementReplyTest, MatchesTheOriginalBytes) {
  EXPECT_EQ(FormatIncrementReply(IncrementReply{1, 1}),
            R"({"success":true,"shardId":1,"count":1})");
  EXPECT_EQ(FormatIncrementReply(IncrementReply{0, kMin}),
            R"({"success":true,"shardId":0,"count":-9223372036854775808})");
}

TEST(FormatCountReplyTest, MatchesTheOriginalBytes) {
  EXPECT_EQ(FormatCountReply(1, 1), R"({"shardId":1,"count":1})");
  EXPECT_EQ(FormatCountReply(2, kMax), R"({"shardId":2,"count":9223372036854775807})");
}

TEST(FormatTotalReplyTest, MatchesTheOriginalBytes) {
  EXPECT_EQ(FormatTotalReply(1), R"({"total":1})");
  EXPECT_EQ(FormatTotalReply(-5), R"({"total":-5})");
}

TEST(ParseIncrementReplyTest, RoundTripsThroughFormat) {
  const IncrementReply cases[] = {{0, 0}, {1, 1}, {2, -7}, {3, kMax}, {4, kMin}};
  for (const IncrementReply& reply : cases) {
    SCOPED_TRACE(testing::Message() << "shard " << reply.shard_id << " count " << reply.count);
    Result<IncrementReply> parsed = ParseIncrementReply(FormatIncrementReply(reply));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, reply);
  }
}

TEST(ParseIncrementReplyTest, AcceptsFieldsInAnyOrder) {
  Result<IncrementReply> parsed = ParseIncrementReply(R"({"count":4,"shardId":2,"success":true})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, (IncrementReply{2, 4}));
}

TEST(ParseIncrementReplyTest, RefusesAnythingElseAsBadGateway) {
  const std::string cases[] = {
      "",
      "not json",
      "[1]",
      R"({"error":"boom"})",
      R"({"success":false,"shardId":1,"count":1})",
      R"({"shardId":1,"count":1})",
      R"({"success":true,"count":1})",
      R"({"success":true,"shardId":1})",
      R"({"success":true,"shardId":"1","count":1})",
      R"({"success":true,"shardId":1,"count":"1"})",
      R"({"success":true,"shardId":1,"count":1.5})",
      R"({"success":true,"shardId":1,"count":9223372036854775808})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<IncrementReply> parsed = ParseIncrementReply(body);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), Code::kBadGateway);
  }
}

TEST(ParseIncrementReplyTest, BadGatewayMessageShowsWhatCameBack) {
  Result<IncrementReply> parsed = ParseIncrementReply(R"({"error":"shard is full"})");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("shard is full"), std::string::npos)
      << parsed.status().message();
}

TEST(ParseCountReplyTest, RoundTripsThroughFormat) {
  for (int64_t count : {kMin, int64_t{-1}, int64_t{0}, int64_t{1}, kMax}) {
    SCOPED_TRACE(testing::Message() << "count " << count);
    Result<int64_t> parsed = ParseCountReply(FormatCountReply(3, count));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, count);
  }
}

TEST(ParseCountReplyTest, RefusesAnythingElseAsBadGateway) {
  const std::string cases[] = {
      "",
      "<html>502</html>",
      "5",
      R"({"shardId":1})",
      R"({"total":1})",
      R"({"shardId":1,"count":"1"})",
      R"({"shardId":1,"count":null})",
      R"({"shardId":1,"count":2.5})",
      R"({"shardId":1,"count":9223372036854775808})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<int64_t> parsed = ParseCountReply(body);
    ASSERT_FALSE(parsed.ok()) << "gave " << *parsed;
    EXPECT_EQ(parsed.status().code(), Code::kBadGateway);
  }
}

TEST(ParseTotalReplyTest, RoundTripsThroughFormat) {
  for (int64_t total : {kMin, int64_t{-1}, int64_t{0}, int64_t{1}, kMax}) {
    SCOPED_TRACE(testing::Message() << "total " << total);
    Result<int64_t> parsed = ParseTotalReply(FormatTotalReply(total));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, total);
  }
}

TEST(ParseTotalReplyTest, RefusesAnythingElseAsBadGateway) {
  const std::string cases[] = {
      "",
      "not json",
      "[]",
      R"({"count":1})",
      R"({"total":"1"})",
      R"({"total":true})",
      R"({"total":1.5})",
      R"({"total":-9223372036854775809})",
      R"({"error":"a shard is down"})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<int64_t> parsed = ParseTotalReply(body);
    ASSERT_FALSE(parsed.ok()) << "gave " << *parsed;
    EXPECT_EQ(parsed.status().code(), Code::kBadGateway);
  }
}

// --- Errors ----------------------------------------------------------------

TEST(FormatErrorTest, WrapsThePlainMessage) {
  EXPECT_EQ(FormatError("shard 1 is down"), R"({"error":"shard 1 is down"})");
}

TEST(FormatErrorTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(FormatError(R"(say "hi")"), R"({"error":"say \"hi\""})");
  EXPECT_EQ(FormatError(R"(a\b)"), R"({"error":"a\\b"})");
  EXPECT_EQ(FormatError("line\nbreak"), R"({"error":"line\nbreak"})");
  EXPECT_EQ(FormatError("tab\there"), R"({"error":"tab\there"})");
}

TEST(FormatErrorTest, InvalidUtf8DoesNotThrowAndStaysParseable) {
  const std::string message = "bad \xff byte";
  std::string body;
  ASSERT_NO_THROW(body = FormatError(message));
  std::string parsed = ParseErrorMessage(body);
  EXPECT_EQ(parsed.rfind("bad ", 0), 0u) << parsed;
  EXPECT_NE(parsed.find(" byte"), std::string::npos) << parsed;
}

TEST(ParseErrorMessageTest, RoundTripsThroughFormatError) {
  const std::string cases[] = {
      "shard 1 is down", R"(say "hi")", R"(back\slash)", "line\nbreak", "", "unicode: \xc3\xa9",
  };
  for (const std::string& message : cases) {
    SCOPED_TRACE("message: " + message);
    EXPECT_EQ(ParseErrorMessage(FormatError(message)), message);
  }
}

TEST(ParseErrorMessageTest, OtherBodiesAreShownAsTheyAre) {
  EXPECT_EQ(ParseErrorMessage("<html>Bad Gateway</html>"), "<html>Bad Gateway</html>");
  EXPECT_EQ(ParseErrorMessage(R"({"total":1})"), R"({"total":1})");
  EXPECT_EQ(ParseErrorMessage(R"({"error":5})"), R"({"error":5})");
}

TEST(ParseErrorMessageTest, LineBreaksInOtherBodiesBecomeSpaces) {
  EXPECT_EQ(ParseErrorMessage("<html>\r\nBad\nGateway</html>"), "<html>  Bad Gateway</html>");
}

TEST(ParseErrorMessageTest, EmptyBodySaysSo) {
  EXPECT_EQ(ParseErrorMessage(""), "an empty answer");
}

TEST(ParseErrorMessageTest, LongBodiesAreCutToAReadableLength) {
  const std::string body(5000, 'x');
  std::string shown = ParseErrorMessage(body);
  EXPECT_LT(shown.size(), 300u);
  EXPECT_EQ(shown.substr(shown.size() - 3), "...");
  EXPECT_EQ(shown.substr(0, 100), std::string(100, 'x'));
}

TEST(ParseErrorMessageTest, ShortBodiesAreNotCut) {
  const std::string body(100, 'y');
  EXPECT_EQ(ParseErrorMessage(body), body);
}

TEST(ParseIncrementReplyTest, NonBooleanSuccessIsBadGatewayNotAnException) {
  for (const std::string_view body :
       {R"({"success":"yes","shardId":1,"count":1})", R"({"success":1,"shardId":1,"count":1})"}) {
    Result<IncrementReply> reply = ParseIncrementReply(body);
    ASSERT_FALSE(reply.ok()) << body;
    EXPECT_EQ(reply.status().code(), Code::kBadGateway) << body;
  }
}

TEST(ParseIncrementReplyTest, ShardIdOutsideIntRangeOrNegativeIsBadGateway) {
  for (const std::string_view body : {R"({"success":true,"shardId":4294967297,"count":1})",
                                      R"({"success":true,"shardId":-1,"count":1})",
                                      R"({"success":true,"shardId":1.5,"count":1})"}) {
    Result<IncrementReply> reply = ParseIncrementReply(body);
    ASSERT_FALSE(reply.ok()) << body;
    EXPECT_EQ(reply.status().code(), Code::kBadGateway) << body;
  }
}

TEST(ParseIncrementRequestTest, FloatWithinInt64IsNotAnIntegerRatherThanOutOfRange) {
  Result<IncrementRequest> request = ParseIncrementRequest(R"({"value":-9.2e18})");
  ASSERT_FALSE(request.ok());
  EXPECT_NE(request.status().message().find("must be an integer"), std::string::npos)
      << request.status().message();
}

}  // namespace
}  // namespace shardctl::core
