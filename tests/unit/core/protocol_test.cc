#include "core/protocol.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

namespace shardctl::core {
namespace {

using test::kMax;
using test::kMin;
using test::Plain;
using test::Request;
using test::Windowed;
// A TotalReply with no parts and no window end.
TotalReply Total(int64_t total, std::vector<int64_t> parts = {}, int64_t window_end = 0) {
  TotalReply reply;
  reply.total = total;
  reply.parts = std::move(parts);
  reply.window_end = window_end;
  return reply;
}

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
    EXPECT_TRUE(request->counter.is_default());
  }
}

TEST(ParseIncrementRequestTest, TakesTheKeyOfOneIdempotencyKeyHeader) {
  Result<IncrementRequest> none = ParseIncrementRequest(R"({"value":5})", {});
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_EQ(none->idempotency_key, "");

  Result<IncrementRequest> keyed =
      ParseIncrementRequest(R"({"value":5,"counter":"c"})", {R"("say \"hi\"")"});
  ASSERT_TRUE(keyed.ok()) << keyed.status().message();
  EXPECT_EQ(keyed->value, 5);
  EXPECT_EQ(keyed->counter.name, "c");
  EXPECT_EQ(keyed->idempotency_key, R"(say "hi")");
}

TEST(ParseIncrementRequestTest, BadOrRepeatedIdempotencyKeyHeadersAreInvalidArgument) {
  const std::vector<std::vector<std::string>> bad = {
      {R"("")"}, {"\"unclosed"}, {"two words"}, {"a", "a"}, {R"("a")", R"("b")"}};
  for (const auto& headers : bad) {
    Result<IncrementRequest> request = ParseIncrementRequest(R"({"value":5})", headers);
    ASSERT_FALSE(request.ok()) << headers.front();
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument);
    EXPECT_NE(request.status().message().find("Idempotency-Key"), std::string::npos)
        << request.status().message();
  }
  // A bad body is reported as before, whatever the key.
  Result<IncrementRequest> body = ParseIncrementRequest(R"({"value":"5"})", {"k"});
  ASSERT_FALSE(body.ok());
  EXPECT_NE(body.status().message().find("\"value\""), std::string::npos)
      << body.status().message();
}

TEST(ParseIncrementRequestTest, MissingValueMeansOne) {
  const std::string cases[] = {"{}", " { } ", "", " ", "\n", " \t\r\n "};
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: '" + body + "'");
    Result<IncrementRequest> request = ParseIncrementRequest(body);
    ASSERT_TRUE(request.ok()) << request.status().message();
    EXPECT_EQ(request->value, 1);
    EXPECT_TRUE(request->counter.is_default());
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
    std::string body = FormatIncrementRequest(Request(value));
    Result<IncrementRequest> parsed = ParseIncrementRequest(body);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(parsed->value, value);
  }
}

TEST(FormatIncrementRequestTest, WritesTheValueField) {
  EXPECT_EQ(FormatIncrementRequest(Request(5)), R"({"value":5})");
  EXPECT_EQ(FormatIncrementRequest(Request(-3)), R"({"value":-3})");
}

// --- Replies ---------------------------------------------------------------

TEST(FormatIncrementReplyTest, MatchesTheOriginalBytes) {
  EXPECT_EQ(FormatIncrementReply(IncrementReply{1, 1, 0}, CounterRef{}),
            R"({"success":true,"shardId":1,"count":1})");
  EXPECT_EQ(FormatIncrementReply(IncrementReply{0, kMin, 0}, CounterRef{}),
            R"({"success":true,"shardId":0,"count":-9223372036854775808})");
}

TEST(FormatCountReplyTest, MatchesTheOriginalBytes) {
  EXPECT_EQ(FormatCountReply(CountReply{1, 1, 0}, CounterRef{}), R"({"shardId":1,"count":1})");
  EXPECT_EQ(FormatCountReply(CountReply{2, kMax, 0}, CounterRef{}),
            R"({"shardId":2,"count":9223372036854775807})");
}

TEST(FormatTotalReplyTest, MatchesTheOriginalBytes) {
  EXPECT_EQ(FormatTotalReply(Total(1), CounterRef{}, /*per_shard=*/false), R"({"total":1})");
  EXPECT_EQ(FormatTotalReply(Total(-5), CounterRef{}, /*per_shard=*/false), R"({"total":-5})");
}

TEST(ParseIncrementReplyTest, RoundTripsThroughFormat) {
  const IncrementReply cases[] = {{0, 0, 0}, {1, 1, 0}, {2, -7, 0}, {3, kMax, 0}, {4, kMin, 0}};
  for (const IncrementReply& reply : cases) {
    SCOPED_TRACE(testing::Message() << "shard " << reply.shard_id << " count " << reply.count);
    Result<IncrementReply> parsed = ParseIncrementReply(FormatIncrementReply(reply, CounterRef{}));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, reply);
  }
}

TEST(ParseIncrementReplyTest, AcceptsFieldsInAnyOrder) {
  Result<IncrementReply> parsed = ParseIncrementReply(R"({"count":4,"shardId":2,"success":true})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, (IncrementReply{2, 4, 0}));
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
    Result<CountReply> parsed = ParseCountReply(FormatCountReply(CountReply{3, count, 0}, {}));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, (CountReply{3, count, 0}));
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
    Result<CountReply> parsed = ParseCountReply(body);
    ASSERT_FALSE(parsed.ok()) << "gave " << parsed->count;
    EXPECT_EQ(parsed.status().code(), Code::kBadGateway);
  }
}

TEST(ParseTotalReplyTest, RoundTripsThroughFormat) {
  for (int64_t total : {kMin, int64_t{-1}, int64_t{0}, int64_t{1}, kMax}) {
    SCOPED_TRACE(testing::Message() << "total " << total);
    Result<TotalReply> parsed =
        ParseTotalReply(FormatTotalReply(Total(total), CounterRef{}, /*per_shard=*/false));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(parsed->total, total);
    EXPECT_TRUE(parsed->parts.empty());
    EXPECT_EQ(parsed->window_end, 0);
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
    Result<TotalReply> parsed = ParseTotalReply(body);
    ASSERT_FALSE(parsed.ok()) << "gave " << parsed->total;
    EXPECT_EQ(parsed.status().code(), Code::kBadGateway);
  }
}

// --- Named and windowed increments ------------------------------------------

struct GoodCounterRequestCase {
  std::string body;
  IncrementRequest expected;
};

TEST(ParseIncrementRequestTest, AcceptsACounterNameAndAWindow) {
  const GoodCounterRequestCase cases[] = {
      {R"({"counter":"pageviews"})", Request(1, Plain("pageviews"))},
      {R"({"value":5,"counter":"api:c42","window":60})", Request(5, Windowed("api:c42", 60))},
      {R"({"window":60,"counter":"a/b.c-d_e","value":-2})", Request(-2, Windowed("a/b.c-d_e", 60))},
      {R"({"window":60})", Request(1, Windowed("default", 60))},
      {R"({"counter":"default"})", Request(1)},
      {R"({"counter":"x","window":1})", Request(1, Windowed("x", 1))},
      {R"({"counter":"x","window":604800})", Request(1, Windowed("x", 604800))},
      {R"({"counter":")" + std::string(200, 'n') + R"("})",
       Request(1, Plain(std::string(200, 'n')))},
  };
  for (const GoodCounterRequestCase& c : cases) {
    SCOPED_TRACE("body: " + c.body);
    Result<IncrementRequest> request = ParseIncrementRequest(c.body);
    ASSERT_TRUE(request.ok()) << request.status().message();
    EXPECT_EQ(request->value, c.expected.value);
    EXPECT_EQ(request->counter, c.expected.counter);
  }
}

TEST(ParseIncrementRequestTest, RefusesABadCounterName) {
  const std::string cases[] = {
      R"({"counter":""})",
      R"({"counter":")" + std::string(201, 'n') + R"("})",
      R"({"counter":"a b"})",
      R"({"counter":"a@b"})",
      R"({"counter":"caf\u00e9"})",
      "{\"counter\":\"caf\xc3\xa9\"}",
      R"({"counter":"a\"b"})",
      R"({"counter":"a\\b"})",
      R"({"counter":"a\u0000b"})",
      R"({"counter":"a\nb"})",
      R"({"value":5,"counter":"a?b","window":60})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<IncrementRequest> request = ParseIncrementRequest(body);
    ASSERT_FALSE(request.ok()) << "accepted the name " << request->counter.name;
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument);
    EXPECT_NE(request.status().message().find("counter name"), std::string::npos)
        << request.status().message();
  }
}

TEST(ParseIncrementRequestTest, RefusesACounterThatIsNotAString) {
  const std::string cases[] = {
      R"({"counter":5})",  R"({"counter":null})", R"({"counter":true})",
      R"({"counter":[]})", R"({"counter":{}})",   R"({"counter":["a"]})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<IncrementRequest> request = ParseIncrementRequest(body);
    ASSERT_FALSE(request.ok()) << "accepted the name " << request->counter.name;
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument);
    EXPECT_NE(request.status().message().find("must be a string"), std::string::npos)
        << request.status().message();
  }
}

struct BadWindowCase {
  std::string body;
  std::string message_part;
};

TEST(ParseIncrementRequestTest, RefusesAWindowThatIsNotOneSecondToAWeek) {
  const BadWindowCase cases[] = {
      {R"({"counter":"a","window":0})", "1 to 604800"},
      {R"({"counter":"a","window":-1})", "1 to 604800"},
      {R"({"counter":"a","window":604801})", "1 to 604800"},
      {R"({"window":-9223372036854775808})", "1 to 604800"},
      {R"({"counter":"a","window":1.5})", "must be an integer"},
      {R"({"counter":"a","window":60.0})", "must be an integer"},
      {R"({"counter":"a","window":"60"})", "must be an integer"},
      {R"({"counter":"a","window":null})", "must be an integer"},
      {R"({"counter":"a","window":true})", "must be an integer"},
      {R"({"counter":"a","window":[60]})", "must be an integer"},
      {R"({"counter":"a","window":9223372036854775808})", "64-bit"},
  };
  for (const BadWindowCase& c : cases) {
    SCOPED_TRACE("body: " + c.body);
    Result<IncrementRequest> request = ParseIncrementRequest(c.body);
    ASSERT_FALSE(request.ok()) << "accepted the window " << request->counter.window;
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument);
    EXPECT_NE(request.status().message().find(c.message_part), std::string::npos)
        << request.status().message();
  }
}

TEST(ParseIncrementRequestTest, RefusesAnUnknownFieldBesideCounterAndWindow) {
  for (std::string_view body : {R"({"counter":"a","windows":60})", R"({"name":"a"})",
                                R"({"value":1,"counter":"a","window":60,"shard":1})"}) {
    SCOPED_TRACE(body);
    Result<IncrementRequest> request = ParseIncrementRequest(body);
    ASSERT_FALSE(request.ok());
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument);
    EXPECT_NE(request.status().message().find("unknown field"), std::string::npos)
        << request.status().message();
  }
}

TEST(FormatIncrementRequestTest, WritesCounterAndWindowOnlyWhenNeeded) {
  EXPECT_EQ(FormatIncrementRequest(Request(5, Plain("pageviews"))),
            R"({"value":5,"counter":"pageviews"})");
  EXPECT_EQ(FormatIncrementRequest(Request(1, Windowed("api:c42", 60))),
            R"({"value":1,"counter":"api:c42","window":60})");
  EXPECT_EQ(FormatIncrementRequest(Request(2, Windowed("default", 60))),
            R"({"value":2,"counter":"default","window":60})");
  EXPECT_EQ(FormatIncrementRequest(Request(3, Plain("default"))), R"({"value":3})");
}

TEST(FormatIncrementRequestTest, NamedAndWindowedRequestsRoundTripThroughParse) {
  const IncrementRequest cases[] = {
      Request(5, Plain("pageviews")),
      Request(-1, Windowed("api:c42", 60)),
      Request(kMin, Windowed("default", 604800)),
      Request(kMax, Windowed(std::string(200, 'z'), 1)),
  };
  for (const IncrementRequest& request : cases) {
    SCOPED_TRACE(FormatIncrementRequest(request));
    Result<IncrementRequest> parsed = ParseIncrementRequest(FormatIncrementRequest(request));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(parsed->value, request.value);
    EXPECT_EQ(parsed->counter, request.counter);
  }
}

// --- Replies about named and windowed counters -------------------------------

TEST(FormatIncrementReplyTest, NamesANamedCounter) {
  EXPECT_EQ(FormatIncrementReply(IncrementReply{2, 5, 0}, Plain("pageviews")),
            R"({"success":true,"shardId":2,"count":5,"counter":"pageviews"})");
}

TEST(FormatIncrementReplyTest, GivesTheWindowAndItsEndForAWindowedCounter) {
  EXPECT_EQ(
      FormatIncrementReply(IncrementReply{1, 3, 120}, Windowed("api:c42", 60)),
      R"({"success":true,"shardId":1,"count":3,"counter":"api:c42","window":60,"windowEnd":120})");
  EXPECT_EQ(
      FormatIncrementReply(IncrementReply{0, 1, 120}, Windowed("default", 60)),
      R"({"success":true,"shardId":0,"count":1,"counter":"default","window":60,"windowEnd":120})");
}

TEST(FormatIncrementReplyTest, TheDefaultCounterNamedExplicitlyKeepsTheOriginalBytes) {
  EXPECT_EQ(FormatIncrementReply(IncrementReply{1, 1, 0}, Plain("default")),
            R"({"success":true,"shardId":1,"count":1})");
}

TEST(FormatCountReplyTest, NamesANamedCounter) {
  EXPECT_EQ(FormatCountReply(CountReply{2, 5, 0}, Plain("pageviews")),
            R"({"shardId":2,"count":5,"counter":"pageviews"})");
}

TEST(FormatCountReplyTest, GivesTheWindowAndItsEndForAWindowedCounter) {
  EXPECT_EQ(FormatCountReply(CountReply{1, 0, 120}, Windowed("api:c42", 60)),
            R"({"shardId":1,"count":0,"counter":"api:c42","window":60,"windowEnd":120})");
}

TEST(FormatTotalReplyTest, NamesANamedCounter) {
  EXPECT_EQ(FormatTotalReply(Total(5, {2, 3}), Plain("pageviews"), /*per_shard=*/false),
            R"({"total":5,"counter":"pageviews"})");
}

TEST(FormatTotalReplyTest, GivesTheWindowAndItsEndForAWindowedCounter) {
  EXPECT_EQ(FormatTotalReply(Total(7, {3, 4}, 120), Windowed("api:c42", 60), /*per_shard=*/false),
            R"({"total":7,"counter":"api:c42","window":60,"windowEnd":120})");
}

TEST(FormatTotalReplyTest, PerShardAddsEveryShardsPartInShardOrder) {
  EXPECT_EQ(FormatTotalReply(Total(6, {1, 0, 5}), CounterRef{}, /*per_shard=*/true),
            R"({"total":6,"shards":[{"shardId":0,"count":1},{"shardId":1,"count":0},)"
            R"({"shardId":2,"count":5}]})");
  EXPECT_EQ(FormatTotalReply(Total(-1, {kMax, kMin}, 120), Windowed("api", 60), /*per_shard=*/true),
            R"({"total":-1,"counter":"api","window":60,"windowEnd":120,"shards":[)"
            R"({"shardId":0,"count":9223372036854775807},)"
            R"({"shardId":1,"count":-9223372036854775808}]})");
}

TEST(FormatTotalReplyTest, WithoutPerShardThePartsAreLeftOut) {
  EXPECT_EQ(FormatTotalReply(Total(6, {1, 0, 5}), CounterRef{}, /*per_shard=*/false),
            R"({"total":6})");
}

TEST(ParseIncrementReplyTest, WindowedReplyRoundTripsThroughFormat) {
  const IncrementReply reply{3, 42, 1700000040};
  Result<IncrementReply> parsed =
      ParseIncrementReply(FormatIncrementReply(reply, Windowed("api:c42", 60)));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, reply);
}

TEST(ParseIncrementReplyTest, NamedReplyRoundTripsThroughFormat) {
  const IncrementReply reply{1, -4, 0};
  Result<IncrementReply> parsed = ParseIncrementReply(FormatIncrementReply(reply, Plain("x")));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, reply);
}

TEST(ParseCountReplyTest, WindowedReplyRoundTripsThroughFormat) {
  const CountReply reply{2, kMin, 3600};
  Result<CountReply> parsed = ParseCountReply(FormatCountReply(reply, Windowed("a", 3600)));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, reply);
}

TEST(ParseTotalReplyTest, RoundTripsPartsAndWindowEndThroughFormat) {
  const TotalReply reply = Total(-1, {kMax, 0, kMin}, 7200);
  for (const CounterRef& counter : {CounterRef{}, Plain("p"), Windowed("w", 3600)}) {
    SCOPED_TRACE(counter.name);
    Result<TotalReply> parsed =
        ParseTotalReply(FormatTotalReply(reply, counter, /*per_shard=*/true));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(parsed->total, -1);
    EXPECT_EQ(parsed->parts, reply.parts);
    EXPECT_EQ(parsed->window_end, counter.window > 0 ? 7200 : 0);
  }
}

TEST(ParseTotalReplyTest, RefusesBadShardsAsBadGateway) {
  const std::string cases[] = {
      R"({"total":1,"shards":5})",
      R"({"total":1,"shards":{"count":1}})",
      R"({"total":1,"shards":[{"shardId":0}]})",
      R"({"total":1,"shards":[{"shardId":0,"count":"1"}]})",
      R"({"total":1,"shards":[1]})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<TotalReply> parsed = ParseTotalReply(body);
    ASSERT_FALSE(parsed.ok()) << "gave " << parsed->total;
    EXPECT_EQ(parsed.status().code(), Code::kBadGateway);
  }
}

// --- Counter queries ---------------------------------------------------------

struct GoodCounterQueryCase {
  std::optional<std::string> counter;
  std::optional<std::string> window;
  CounterRef expected;
};

TEST(ParseCounterQueryTest, AcceptsAbsentOrValidParameters) {
  const GoodCounterQueryCase cases[] = {
      {std::nullopt, std::nullopt, CounterRef{}},
      {"pageviews", std::nullopt, Plain("pageviews")},
      {"api:c42", "60", Windowed("api:c42", 60)},
      {std::nullopt, "60", Windowed("default", 60)},
      {"x", "1", Windowed("x", 1)},
      {"x", "604800", Windowed("x", 604800)},
  };
  for (const GoodCounterQueryCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "counter " << c.counter.value_or("(none)") << ", window "
                                    << c.window.value_or("(none)"));
    Result<CounterRef> counter = ParseCounterQuery(c.counter, c.window);
    ASSERT_TRUE(counter.ok()) << counter.status().message();
    EXPECT_EQ(*counter, c.expected);
  }
}

TEST(ParseCounterQueryTest, RefusesABadName) {
  for (const std::string& name : {std::string(""), std::string("a b"), std::string("a@60"),
                                  std::string(201, 'a'), std::string("a&window=60")}) {
    SCOPED_TRACE("name: " + name);
    Result<CounterRef> counter = ParseCounterQuery(name, std::nullopt);
    ASSERT_FALSE(counter.ok()) << "accepted " << counter->name;
    EXPECT_EQ(counter.status().code(), Code::kInvalidArgument);
  }
}

TEST(ParseCounterQueryTest, RefusesABadWindow) {
  for (const char* window : {"0", "-1", "604801", "1.5", "abc", "060", " 60", "60s", "", "+60"}) {
    SCOPED_TRACE(testing::Message() << "window '" << window << "'");
    Result<CounterRef> counter = ParseCounterQuery("a", std::string(window));
    ASSERT_FALSE(counter.ok()) << "accepted " << counter->window;
    EXPECT_EQ(counter.status().code(), Code::kInvalidArgument);
    EXPECT_NE(counter.status().message().find("window"), std::string::npos)
        << counter.status().message();
  }
}

TEST(CounterQueryStringTest, IsEmptyForTheDefaultCounterAndNamesAnyOther) {
  EXPECT_EQ(CounterQueryString(CounterRef{}), "");
  EXPECT_EQ(CounterQueryString(Plain("default")), "");
  EXPECT_EQ(CounterQueryString(Plain("pageviews")), "?counter=pageviews");
  EXPECT_EQ(CounterQueryString(Windowed("api:c42", 60)), "?counter=api:c42&window=60");
  EXPECT_EQ(CounterQueryString(Windowed("default", 60)), "?counter=default&window=60");
}

// Splits "?a=1&b=2" into its parameters; absent ones stay nullopt.
struct QueryParams {
  std::optional<std::string> prefix, top, limit, after, counter, window;
};
QueryParams SplitQuery(std::string_view query) {
  QueryParams params;
  if (query.starts_with('?')) query.remove_prefix(1);
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    size_t equals = pair.find('=');
    std::string_view key = pair.substr(0, equals);
    std::string value(equals == std::string_view::npos ? "" : pair.substr(equals + 1));
    if (key == "prefix") params.prefix = value;
    if (key == "top") params.top = value;
    if (key == "limit") params.limit = value;
    if (key == "after") params.after = value;
    if (key == "counter") params.counter = value;
    if (key == "window") params.window = value;
  }
  return params;
}

TEST(CounterQueryStringTest, RoundTripsThroughParseCounterQuery) {
  for (const CounterRef& counter : {CounterRef{}, Plain("pageviews"), Windowed("api:c42", 60),
                                    Windowed("default", 604800), Plain("a/b.c-d_e")}) {
    SCOPED_TRACE(CounterQueryString(counter));
    QueryParams params = SplitQuery(CounterQueryString(counter));
    Result<CounterRef> parsed = ParseCounterQuery(params.counter, params.window);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, counter);
  }
}

// --- Counter listings ----------------------------------------------------------

TEST(FormatCounterPartsTest, WritesTheShardIdAndEveryPart) {
  EXPECT_EQ(
      FormatCounterParts(3, {{"a", 1}, {"api:c42", -5}}),
      R"({"shardId":3,"counters":[{"counter":"a","count":1},{"counter":"api:c42","count":-5}]})");
  EXPECT_EQ(FormatCounterParts(0, {}), R"({"shardId":0,"counters":[]})");
}

TEST(ParseCounterPartsTest, RoundTripsThroughFormat) {
  const std::vector<std::vector<CounterPart>> cases = {
      {},
      {{"a", 1}},
      {{"api:c42", -5}, {"x/y", kMax}, {"m", kMin}, {std::string(200, 'q'), 0}},
  };
  for (const std::vector<CounterPart>& parts : cases) {
    SCOPED_TRACE(FormatCounterParts(1, parts));
    Result<std::vector<CounterPart>> parsed = ParseCounterParts(FormatCounterParts(1, parts));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, parts);
  }
}

TEST(ParseCounterPartsTest, RefusesAListWithAnInvalidNameAsBadGateway) {
  const std::string cases[] = {
      R"({"shardId":0,"counters":[{"counter":"a b","count":1}]})",
      R"({"shardId":0,"counters":[{"counter":"ok","count":1},{"counter":"","count":2}]})",
      R"({"shardId":0,"counters":[{"counter":"a@60","count":1}]})",
      R"({"shardId":0,"counters":[{"counter":"caf\u00e9","count":1}]})",
      R"({"shardId":0,"counters":[{"counter":5,"count":1}]})",
      R"({"shardId":0,"counters":[{"count":1}]})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<std::vector<CounterPart>> parsed = ParseCounterParts(body);
    ASSERT_FALSE(parsed.ok()) << "gave " << parsed->size() << " parts";
    EXPECT_EQ(parsed.status().code(), Code::kBadGateway);
  }
}

TEST(ParseCounterPartsTest, RefusesAnythingElseAsBadGateway) {
  const std::string cases[] = {
      "",
      "not json",
      "[]",
      R"({"shardId":0})",
      R"({"shardId":0,"counters":{}})",
      R"({"shardId":0,"counters":[{"counter":"a"}]})",
      R"({"shardId":0,"counters":[{"counter":"a","count":"1"}]})",
      R"({"shardId":0,"counters":[{"counter":"a","count":1.5}]})",
      R"({"shardId":0,"counters":[5]})",
      R"({"error":"shard is down"})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<std::vector<CounterPart>> parsed = ParseCounterParts(body);
    ASSERT_FALSE(parsed.ok()) << "gave " << parsed->size() << " parts";
    EXPECT_EQ(parsed.status().code(), Code::kBadGateway);
  }
}

CounterList MakeList(std::vector<CounterTotal> counters, std::string next) {
  CounterList list;
  list.counters = std::move(counters);
  list.next = std::move(next);
  return list;
}

TEST(FormatCounterListTest, WritesNextOnlyWhenAnotherPageFollows) {
  EXPECT_EQ(FormatCounterList(MakeList({{"a", 5}, {"b", -1}}, "")),
            R"({"counters":[{"counter":"a","total":5},{"counter":"b","total":-1}]})");
  EXPECT_EQ(FormatCounterList(MakeList({{"a", 5}}, "a")),
            R"({"counters":[{"counter":"a","total":5}],"next":"a"})");
  EXPECT_EQ(FormatCounterList(MakeList({}, "")), R"({"counters":[]})");
}

TEST(ParseCounterListTest, RoundTripsThroughFormat) {
  const CounterList cases[] = {
      MakeList({}, ""),
      MakeList({{"a", 5}}, ""),
      MakeList({{"a", kMax}, {"api:c42", kMin}}, "api:c42"),
  };
  for (const CounterList& list : cases) {
    SCOPED_TRACE(FormatCounterList(list));
    Result<CounterList> parsed = ParseCounterList(FormatCounterList(list));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(parsed->counters, list.counters);
    EXPECT_EQ(parsed->next, list.next);
  }
}

TEST(ParseCounterListTest, RefusesAnythingElseAsBadGateway) {
  const std::string cases[] = {
      "",
      "[]",
      R"({"total":1})",
      R"({"counters":5})",
      R"({"counters":[{"counter":"a"}]})",
      R"({"counters":[{"total":1}]})",
      R"({"counters":[{"counter":5,"total":1}]})",
      R"({"counters":[{"counter":"a","total":"1"}]})",
      R"({"error":"fake shard 1: down"})",
  };
  for (const std::string& body : cases) {
    SCOPED_TRACE("body: " + body);
    Result<CounterList> parsed = ParseCounterList(body);
    ASSERT_FALSE(parsed.ok()) << "gave " << parsed->counters.size() << " counters";
    EXPECT_EQ(parsed.status().code(), Code::kBadGateway);
  }
}

// --- List queries ------------------------------------------------------------

TEST(ParseListQueryTest, NoParametersListsEverythingByNameWithTheDefaultLimit) {
  Result<ListQuery> query = ParseListQuery(std::nullopt, std::nullopt, std::nullopt, std::nullopt);
  ASSERT_TRUE(query.ok()) << query.status().message();
  EXPECT_EQ(query->prefix, "");
  EXPECT_EQ(query->top, 0);
  EXPECT_EQ(query->limit, 1000);
  EXPECT_EQ(query->after, "");
}

TEST(ParseListQueryTest, AcceptsPrefixLimitAndAfter) {
  Result<ListQuery> query = ParseListQuery("api:", std::nullopt, "50", "api:c1");
  ASSERT_TRUE(query.ok()) << query.status().message();
  EXPECT_EQ(query->prefix, "api:");
  EXPECT_EQ(query->top, 0);
  EXPECT_EQ(query->limit, 50);
  EXPECT_EQ(query->after, "api:c1");
}

TEST(ParseListQueryTest, EmptyPrefixAndAfterMeanNone) {
  Result<ListQuery> query = ParseListQuery("", std::nullopt, std::nullopt, "");
  ASSERT_TRUE(query.ok()) << query.status().message();
  EXPECT_EQ(query->prefix, "");
  EXPECT_EQ(query->after, "");
}

TEST(ParseListQueryTest, AcceptsTopFromOneTo10000) {
  for (const char* top : {"1", "10", "10000"}) {
    SCOPED_TRACE(top);
    Result<ListQuery> query = ParseListQuery("web", std::string(top), std::nullopt, std::nullopt);
    ASSERT_TRUE(query.ok()) << query.status().message();
    EXPECT_EQ(query->top, std::stoi(top));
    EXPECT_EQ(query->prefix, "web");
  }
}

TEST(ParseListQueryTest, AcceptsLimitFromOneTo10000) {
  for (const char* limit : {"1", "1000", "10000"}) {
    SCOPED_TRACE(limit);
    Result<ListQuery> query =
        ParseListQuery(std::nullopt, std::nullopt, std::string(limit), std::nullopt);
    ASSERT_TRUE(query.ok()) << query.status().message();
    EXPECT_EQ(query->limit, std::stoi(limit));
  }
}

TEST(ParseListQueryTest, RefusesABadTop) {
  for (const char* top : {"0", "10001", "010", "abc", "-1", "", "1.5", " 5", "+5"}) {
    SCOPED_TRACE(testing::Message() << "top '" << top << "'");
    Result<ListQuery> query =
        ParseListQuery(std::nullopt, std::string(top), std::nullopt, std::nullopt);
    ASSERT_FALSE(query.ok()) << "accepted top " << query->top;
    EXPECT_EQ(query.status().code(), Code::kInvalidArgument);
    EXPECT_NE(query.status().message().find("top"), std::string::npos) << query.status().message();
  }
}

TEST(ParseListQueryTest, RefusesABadLimit) {
  for (const char* limit : {"0", "10001", "01", "abc", "-5", "", "2.5"}) {
    SCOPED_TRACE(testing::Message() << "limit '" << limit << "'");
    Result<ListQuery> query =
        ParseListQuery(std::nullopt, std::nullopt, std::string(limit), std::nullopt);
    ASSERT_FALSE(query.ok()) << "accepted limit " << query->limit;
    EXPECT_EQ(query.status().code(), Code::kInvalidArgument);
    EXPECT_NE(query.status().message().find("limit"), std::string::npos)
        << query.status().message();
  }
}

TEST(ParseListQueryTest, RefusesTopWithLimitOrAfter) {
  Result<ListQuery> with_limit = ParseListQuery(std::nullopt, "5", "10", std::nullopt);
  ASSERT_FALSE(with_limit.ok());
  EXPECT_EQ(with_limit.status().code(), Code::kInvalidArgument);
  EXPECT_NE(with_limit.status().message().find("cannot be combined"), std::string::npos)
      << with_limit.status().message();

  Result<ListQuery> with_after = ParseListQuery(std::nullopt, "5", std::nullopt, "b");
  ASSERT_FALSE(with_after.ok());
  EXPECT_EQ(with_after.status().code(), Code::kInvalidArgument);

  Result<ListQuery> with_both = ParseListQuery("a", "5", "10", "b");
  ASSERT_FALSE(with_both.ok());
  EXPECT_EQ(with_both.status().code(), Code::kInvalidArgument);
}

TEST(ParseListQueryTest, RefusesABadPrefixOrAfter) {
  for (const std::string& bad :
       {std::string("a b"), std::string("a@"), std::string(201, 'a'), std::string("x&top=1")}) {
    SCOPED_TRACE("text: " + bad);
    Result<ListQuery> prefix = ParseListQuery(bad, std::nullopt, std::nullopt, std::nullopt);
    ASSERT_FALSE(prefix.ok()) << "accepted prefix " << prefix->prefix;
    EXPECT_EQ(prefix.status().code(), Code::kInvalidArgument);
    EXPECT_NE(prefix.status().message().find("prefix"), std::string::npos)
        << prefix.status().message();

    Result<ListQuery> after = ParseListQuery(std::nullopt, std::nullopt, std::nullopt, bad);
    ASSERT_FALSE(after.ok()) << "accepted after " << after->after;
    EXPECT_EQ(after.status().code(), Code::kInvalidArgument);
    EXPECT_NE(after.status().message().find("after"), std::string::npos)
        << after.status().message();
  }
}

ListQuery MakeQuery(std::string prefix, int top, int limit, std::string after) {
  ListQuery query;
  query.prefix = std::move(prefix);
  query.top = top;
  query.limit = limit;
  query.after = std::move(after);
  return query;
}

TEST(ListQueryStringTest, WritesTopOrLimitAndAfter) {
  EXPECT_EQ(ListQueryString(ListQuery{}), "?prefix=&limit=1000");
  EXPECT_EQ(ListQueryString(MakeQuery("api:", 5, 1000, "")), "?prefix=api:&top=5");
  EXPECT_EQ(ListQueryString(MakeQuery("", 0, 2, "b")), "?prefix=&limit=2&after=b");
}

TEST(ListQueryStringTest, RoundTripsThroughParseListQuery) {
  const ListQuery cases[] = {
      ListQuery{},
      MakeQuery("api:", 5, 1000, ""),
      MakeQuery("", 10000, 1000, ""),
      MakeQuery("", 0, 2, "b"),
      MakeQuery("a/b", 0, 10000, "a/b.c"),
  };
  for (const ListQuery& query : cases) {
    SCOPED_TRACE(ListQueryString(query));
    QueryParams params = SplitQuery(ListQueryString(query));
    Result<ListQuery> parsed =
        ParseListQuery(params.prefix, params.top, params.limit, params.after);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(parsed->prefix, query.prefix);
    EXPECT_EQ(parsed->top, query.top);
    EXPECT_EQ(parsed->limit, query.limit);
    EXPECT_EQ(parsed->after, query.after);
  }
}

// --- Reset -------------------------------------------------------------------

TEST(ParseResetRequestTest, ReturnsTheCounterName) {
  for (std::string_view body :
       {R"({"counter":"pageviews"})", " {\n\"counter\" : \"pageviews\"} "}) {
    Result<std::string> name = ParseResetRequest(body);
    ASSERT_TRUE(name.ok()) << name.status().message();
    EXPECT_EQ(*name, "pageviews");
  }
}

TEST(ParseResetRequestTest, RequiresTheCounter) {
  for (std::string_view body : {"", " ", "{}"}) {
    SCOPED_TRACE(testing::Message() << "body '" << body << "'");
    Result<std::string> name = ParseResetRequest(body);
    ASSERT_FALSE(name.ok()) << "accepted " << *name;
    EXPECT_EQ(name.status().code(), Code::kInvalidArgument);
    EXPECT_NE(name.status().message().find("which counter"), std::string::npos)
        << name.status().message();
  }
}

TEST(ParseResetRequestTest, RefusesUnknownFields) {
  for (std::string_view body :
       {R"({"counter":"a","window":60})", R"({"name":"a"})", R"({"counter":"a","value":1})"}) {
    SCOPED_TRACE(body);
    Result<std::string> name = ParseResetRequest(body);
    ASSERT_FALSE(name.ok()) << "accepted " << *name;
    EXPECT_EQ(name.status().code(), Code::kInvalidArgument);
    EXPECT_NE(name.status().message().find("unknown field"), std::string::npos)
        << name.status().message();
  }
}

TEST(ParseResetRequestTest, RefusesABadNameOrABodyThatIsNotAnObject) {
  for (std::string_view body : {R"({"counter":""})", R"({"counter":"a b"})", R"({"counter":5})",
                                R"({"counter":null})", "[]", "not json", R"("pageviews")"}) {
    SCOPED_TRACE(body);
    Result<std::string> name = ParseResetRequest(body);
    ASSERT_FALSE(name.ok()) << "accepted " << *name;
    EXPECT_EQ(name.status().code(), Code::kInvalidArgument);
  }
}

TEST(FormatResetRequestTest, RoundTripsThroughParse) {
  EXPECT_EQ(FormatResetRequest("pageviews"), R"({"counter":"pageviews"})");
  for (const std::string& name : {std::string("pageviews"), std::string("api:c42"),
                                  std::string("default"), std::string(200, 'r')}) {
    Result<std::string> parsed = ParseResetRequest(FormatResetRequest(name));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, name);
  }
}

TEST(FormatResetReplyTest, NamesTheCounterAndTheRemovedTotal) {
  EXPECT_EQ(FormatResetReply("pageviews", 21), R"({"counter":"pageviews","removed":21})");
  EXPECT_EQ(FormatResetReply("a", kMin), R"({"counter":"a","removed":-9223372036854775808})");
}

TEST(ParseResetReplyTest, RoundTripsThroughFormat) {
  for (int64_t removed : {kMin, int64_t{-1}, int64_t{0}, int64_t{21}, kMax}) {
    SCOPED_TRACE(testing::Message() << "removed " << removed);
    Result<int64_t> parsed = ParseResetReply(FormatResetReply("api:c42", removed));
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    EXPECT_EQ(*parsed, removed);
  }
}

TEST(ParseResetReplyTest, RefusesAnythingElseAsBadGateway) {
  for (std::string_view body : {"", "[]", R"({"counter":"a"})", R"({"counter":"a","removed":"1"})",
                                R"({"counter":"a","removed":1.5})", R"({"error":"down"})"}) {
    SCOPED_TRACE(body);
    Result<int64_t> parsed = ParseResetReply(body);
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

TEST(FormatTotalReplyTest, PartialTotalSaysSoAndListsTheMissingShards) {
  TotalReply reply = Total(12, {5, 0, 7});
  reply.partial = true;
  reply.missing = {{1, "shard 1 at \"x\" is down"}};
  EXPECT_EQ(FormatTotalReply(reply, CounterRef{}, /*per_shard=*/false),
            R"({"total":12,"partial":true,"missing":[{"error":"shard 1 at \"x\" is down","shardId":1}]})");
  EXPECT_EQ(FormatTotalReply(reply, CounterRef{}, /*per_shard=*/true),
            R"({"total":12,"shards":[{"shardId":0,"count":5},{"shardId":1,"count":null},)"
            R"({"shardId":2,"count":7}],"partial":true,"missing":[{"error":"shard 1 at \"x\" is down","shardId":1}]})");
}

TEST(FormatTotalReplyTest, PartialTotalWithNothingMissingIsNotPartial) {
  TotalReply reply = Total(3);
  reply.partial = true;
  EXPECT_EQ(FormatTotalReply(reply, CounterRef{}, /*per_shard=*/false),
            R"({"total":3,"partial":false,"missing":[]})");
}

TEST(ParseTotalReplyTest, ReadsBackAPartialTotal) {
  TotalReply reply = Total(12, {5, 0, 7});
  reply.partial = true;
  reply.missing = {{1, "down"}};
  Result<TotalReply> parsed =
      ParseTotalReply(FormatTotalReply(reply, CounterRef{}, /*per_shard=*/true));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->total, 12);
  EXPECT_EQ(parsed->parts, (std::vector<int64_t>{5, 0, 7}));
  EXPECT_TRUE(parsed->partial);
  EXPECT_EQ(parsed->missing, (std::vector<MissingPart>{{1, "down"}}));
}

TEST(ShardStatesTest, RoundTripsUpAndDownShards) {
  ShardState up;
  up.id = 0;
  up.address = "http://127.0.0.1:3000";
  up.since = 1000;
  up.count = 42;
  ShardState down;
  down.id = 1;
  down.address = "http://127.0.0.1:3001";
  down.up = false;
  down.since = 1005;
  down.last_error = "cannot connect";
  std::string body = FormatShardStates(Routing::kRoundRobin, {up, down});
  EXPECT_EQ(body,
            R"({"routing":"round-robin","shards":[{"address":"http://127.0.0.1:3000","count":42,)"
            R"("lastError":null,"shardId":0,"since":1000,"state":"up"},{"address":)"
            R"("http://127.0.0.1:3001","count":null,"lastError":"cannot connect","shardId":1,)"
            R"("since":1005,"state":"down"}]})");
  Result<std::vector<ShardState>> parsed = ParseShardStates(body);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].count, 42);
  EXPECT_TRUE((*parsed)[0].up);
  EXPECT_EQ((*parsed)[0].last_error, "");
  EXPECT_FALSE((*parsed)[1].up);
  EXPECT_EQ((*parsed)[1].since, 1005);
  EXPECT_EQ((*parsed)[1].last_error, "cannot connect");
  EXPECT_EQ((*parsed)[1].count, std::nullopt);
}

TEST(ShardStatesTest, RefusesWhatIsNotAShardListing) {
  for (const char* body : {"", "{}", R"({"shards":{}})", R"({"shards":[{"shardId":0}]})",
                           "<html>bad gateway</html>"}) {
    EXPECT_EQ(ParseShardStates(body).status().code(), Code::kBadGateway) << body;
  }
}

// --- Batches -----------------------------------------------------------------

TEST(ParseBatchRequestTest, ReadsValuesCounterAndWindow) {
  Result<BatchRequest> batch =
      ParseBatchRequest(R"({"values":[1,-2,9223372036854775807],"counter":"a","window":60})", {});
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  EXPECT_EQ(batch->values, (std::vector<int64_t>{1, -2, kMax}));
  EXPECT_EQ(batch->counter, Windowed("a", 60));
  EXPECT_EQ(batch->idempotency_key, "");
  EXPECT_TRUE(IsBatchBody(R"({"values":[1]})"));
  EXPECT_FALSE(IsBatchBody(R"({"value":1})"));
}

TEST(ParseBatchRequestTest, NamesTheBadValueByItsPosition) {
  Result<BatchRequest> batch = ParseBatchRequest(R"({"values":[1,2,"3"]})", {});
  EXPECT_EQ(batch.status().code(), Code::kInvalidArgument);
  EXPECT_NE(batch.status().message().find("values[2]"), std::string::npos)
      << batch.status().message();
}

TEST(ParseBatchRequestTest, RefusesWhatIsNotABatch) {
  for (const char* body : {R"({"values":[]})", R"({"values":5})", R"({"values":[1.5]})",
                           R"({"values":[1],"value":2})", R"({"values":[99999999999999999999]})",
                           R"({"values":[1],"counter":"bad name"})", R"([{"values":[1]}])"}) {
    EXPECT_EQ(ParseBatchRequest(body, {}).status().code(), Code::kInvalidArgument) << body;
  }
  std::string huge = R"({"values":[)";
  for (size_t i = 0; i <= BatchRequest::kMaxValues; ++i) huge += i == 0 ? "1" : ",1";
  EXPECT_EQ(ParseBatchRequest(huge + "]}", {}).status().code(), Code::kInvalidArgument);
}

TEST(ParseBatchRequestTest, TakesOneIdempotencyKey) {
  EXPECT_EQ(ParseBatchRequest(R"({"values":[1]})", {"k1"})->idempotency_key, "k1");
  EXPECT_EQ(ParseBatchRequest(R"({"values":[1]})", {"k1", "k2"}).status().code(),
            Code::kInvalidArgument);
}

TEST(BatchTest, RequestAndReplyRoundTrip) {
  BatchRequest request;
  request.values = {1, -2, 3};
  request.counter = Plain("pageviews");
  EXPECT_EQ(FormatBatchRequest(request), R"({"values":[1,-2,3],"counter":"pageviews"})");
  EXPECT_EQ(ParseBatchRequest(FormatBatchRequest(request), {})->values, request.values);

  BatchReply reply;
  reply.applied = 3;
  reply.parts = {{0, 1, 10}, {2, 2, -4}};
  std::string body = FormatBatchReply(reply, CounterRef{});
  EXPECT_EQ(body, R"({"success":true,"applied":3,"shards":[{"shardId":0,"applied":1,"count":10},)"
                  R"({"shardId":2,"applied":2,"count":-4}]})");
  Result<BatchReply> parsed = ParseBatchReply(body);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->applied, 3);
  EXPECT_EQ(parsed->parts, reply.parts);
  EXPECT_EQ(ParseBatchReply(R"({"success":true,"shardId":1,"count":1})").status().code(),
            Code::kBadGateway);
}

// --- A shard's pages and counts -----------------------------------------------

TEST(ShardListQueryTest, WithoutALimitItIsTheWholeListing) {
  Result<ShardListQuery> query = ParseShardListQuery(std::string("api:"), std::nullopt,
                                                     std::nullopt, std::nullopt, std::nullopt);
  ASSERT_TRUE(query.ok()) << query.status().message();
  EXPECT_EQ(query->kind, ShardListQuery::Kind::kAll);
  EXPECT_EQ(query->page.prefix, "api:");
}

TEST(ShardListQueryTest, PagesByNameAndByCountRoundTripThroughTheirQueryStrings) {
  // The query string as the server sees it, one parameter at a time.
  auto parse = [](const std::string& text) {
    std::map<std::string, std::string> params;
    std::string rest = text.substr(1);
    while (!rest.empty()) {
      std::string pair = rest.substr(0, rest.find('&'));
      rest = pair.size() < rest.size() ? rest.substr(pair.size() + 1) : "";
      params[pair.substr(0, pair.find('='))] = pair.substr(pair.find('=') + 1);
    }
    auto param = [&](const char* name) -> std::optional<std::string> {
      if (!params.contains(name)) return std::nullopt;
      return params[name];
    };
    return ParseShardListQuery(param("prefix"), param("order"), param("limit"), param("after"),
                               param("afterCount"));
  };
  PageQuery page{"api:", "api:b", 25};
  Result<ShardListQuery> parsed = parse(PageQueryString(page));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->kind, ShardListQuery::Kind::kPage);
  EXPECT_EQ(parsed->page, page);

  RankQuery rank;
  rank.prefix = "x";
  rank.limit = 64;
  parsed = parse(RankQueryString(rank));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->kind, ShardListQuery::Kind::kRank);
  EXPECT_EQ(parsed->rank, rank);
  rank.from_start = false;
  rank.after = {-9223372036854775807LL - 1, "x:last"};
  parsed = parse(RankQueryString(rank));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->rank, rank);
}

TEST(ShardListQueryTest, RefusesWhatDoesNotMakeAPage) {
  const std::optional<std::string> none;
  struct Case {
    std::optional<std::string> order, limit, after, after_count;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {std::string("count"), none, none, none, "go with limit"},
           {none, none, std::string("a"), none, "go with limit"},
           {std::string("size"), std::string("5"), none, none, "order is name or count"},
           {none, std::string("0"), none, none, "limit"},
           {none, std::string("100001"), none, none, "limit"},
           {std::string("count"), std::string("5"), std::string("a"), none, "both after and"},
           {std::string("count"), std::string("5"), std::string("a"), std::string("x"),
            "afterCount"},
           {none, std::string("5"), none, std::string("3"), "afterCount goes with order=count"},
           {none, std::string("5"), std::string("bad name!"), none, "the parameter after"},
       }) {
    Result<ShardListQuery> query =
        ParseShardListQuery(none, c.order, c.limit, c.after, c.after_count);
    ASSERT_FALSE(query.ok()) << c.says;
    EXPECT_EQ(query.status().code(), Code::kInvalidArgument);
    EXPECT_NE(query.status().message().find(c.says), std::string::npos) << query.status().message();
  }
}

TEST(CountsTest, RequestAndReplyRoundTrip) {
  std::vector<std::string> names{"a", "api:b", "c.d-e_f/g"};
  Result<std::vector<std::string>> parsed = ParseCountsRequest(FormatCountsRequest(names));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, names);
  std::vector<int64_t> counts{0, -9223372036854775807LL - 1, 9223372036854775807LL};
  Result<std::vector<int64_t>> reply = ParseCountsReply(FormatCountsReply(2, counts));
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(*reply, counts);
}

TEST(CountsTest, RefusesABadRequestSayingWhy) {
  for (const auto& [body, says] : std::vector<std::pair<std::string, std::string>>{
           {R"({"counters":[]})", "name 1 to 10000 counters"},
           {R"({"counters":"a"})", "name 1 to 10000 counters"},
           {R"({"names":["a"]})", "unknown field"},
           {R"({"counters":["a",7]})", "counters[1]"},
           {R"({"counters":["a","no spaces"]})", "counters[1]"},
           {"[]", ""},
       }) {
    Result<std::vector<std::string>> parsed = ParseCountsRequest(body);
    ASSERT_FALSE(parsed.ok()) << body;
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument) << body;
    EXPECT_NE(parsed.status().message().find(says), std::string::npos) << parsed.status().message();
  }
  EXPECT_FALSE(ParseCountsReply(R"({"shardId":1,"counts":[1,"2"]})").ok());
  EXPECT_FALSE(ParseCountsReply(R"({"shardId":1})").ok());
}

// --- Batches of many counters -------------------------------------------------

const std::vector<std::string> kTextPlain = {"text/plain; charset=utf-8"};

Result<ManyRequest> ParseLines(std::string_view body,
                               const std::optional<std::string>& window = std::nullopt) {
  return ParseManyRequest(body, /*lines=*/true, window, {});
}
Result<ManyRequest> ParseManyJson(std::string_view body,
                                  const std::optional<std::string>& window = std::nullopt) {
  return ParseManyRequest(body, /*lines=*/false, window, {});
}

TEST(IsManyBodyTest, TellsTheFormsApartWithoutParsing) {
  EXPECT_TRUE(IsManyBody(R"({"increments":[]})", {}));
  EXPECT_TRUE(IsManyBody("c:1 5\n", kTextPlain));
  EXPECT_TRUE(IsManyBody("c:1 5\n", {"TEXT/PLAIN"}));
  // A browser's fetch sends JSON as text/plain: still a single increment.
  EXPECT_FALSE(IsManyBody(R"( {"value":5})", kTextPlain));
  EXPECT_FALSE(IsManyBody("", kTextPlain));
  EXPECT_FALSE(IsManyBody("c:1 5\n", {"application/json"}));
  EXPECT_FALSE(IsManyBody("c:1 5\n", {}));
  EXPECT_FALSE(IsManyBody(R"({"values":[1,2]})", {}));
  EXPECT_FALSE(IsManyBody(R"({"value":1})", {}));
}

TEST(ParseManyRequestTest, ReadsLinesWithAnySpacingAndSkipsBlankOnes) {
  Result<ManyRequest> request =
      ParseLines("c:1 5\r\n\n  c:2\t-3  \nc:1 9223372036854775807\nlast -9223372036854775808");
  ASSERT_TRUE(request.ok()) << request.status().message();
  EXPECT_EQ(request->items, (std::vector<ManyRequest::Item>{
                                {"c:1", 5}, {"c:2", -3}, {"c:1", kMax}, {"last", kMin}}));
  EXPECT_EQ(request->window, 0);
  EXPECT_EQ(request->idempotency_key, "");
}

TEST(ParseManyRequestTest, ReadsJsonItemsWindowAndKey) {
  Result<ManyRequest> request = ParseManyRequest(
      R"({"increments":[{"counter":"c:1","value":5},{"value":-3,"counter":"c:2"},{"counter":"x"}],"window":60})",
      false, std::nullopt, {"\"k-1\""});
  ASSERT_TRUE(request.ok()) << request.status().message();
  EXPECT_EQ(request->items, (std::vector<ManyRequest::Item>{{"c:1", 5}, {"c:2", -3}, {"x", 1}}));
  EXPECT_EQ(request->window, 60);
  EXPECT_EQ(request->idempotency_key, "k-1");
  Result<ManyRequest> lines = ParseLines("a 1\n", "3600");
  ASSERT_TRUE(lines.ok()) << lines.status().message();
  EXPECT_EQ(lines->window, 3600);
}

TEST(ParseManyRequestTest, ABadLineIsNamedByItsNumber) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a 1\nb\n", "line 2: expected COUNTER VALUE"},
      {"a 1\n\nb 1 2\n", "line 3: expected COUNTER VALUE"},
      {"a 1\nb x\n", "line 2: "},
      {"a 1\nb 010\n", "line 2: "},
      {"a 1\nb 9223372036854775808\n", "line 2: "},
      {"bad\"name 1\n", "line 1: "},
      {"a 1\n" + std::string(201, 'n') + " 1\n", "line 2: the counter name is 201 bytes"},
      {"\n \n", "no increments"},
  };
  for (const auto& [body, message] : cases) {
    Result<ManyRequest> request = ParseLines(body);
    ASSERT_FALSE(request.ok()) << body;
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument) << body;
    EXPECT_NE(request.status().message().find(message), std::string::npos)
        << body << " -> " << request.status().message();
  }
}

TEST(ParseManyRequestTest, ABadJsonItemIsNamedByItsIndex) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"increments":[{"counter":"a"},{"counter":"a","value":"1"}]})", "increments[1]: "},
      {R"({"increments":[{"counter":"a"},{"value":1}]})", "increments[1]: needs a \"counter\""},
      {R"({"increments":[{"counter":"a b"}]})", "increments[0]: "},
      {R"({"increments":[{"counter":"a","x":1}]})", "increments[0]: unknown field \"x\""},
      {R"({"increments":[5]})", "increments[0]: must be an object"},
      {R"({"increments":[{"counter":"a","value":1.5}]})", "increments[0]: "},
      {R"({"increments":{}})", "\"increments\" must be an array"},
      {R"({"increments":[]})", "needs \"increments\""},
      {R"({"increments":[{"counter":"a"}],"other":1})", "unknown field \"other\""},
      {R"({"increments":[{"counter":"a"}],"window":-1})", "window"},
      {R"({"increments":[{"counter":"a"}])", "not valid JSON"},
  };
  for (const auto& [body, message] : cases) {
    Result<ManyRequest> request = ParseManyJson(body);
    ASSERT_FALSE(request.ok()) << body;
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument) << body;
    EXPECT_NE(request.status().message().find(message), std::string::npos)
        << body << " -> " << request.status().message();
  }
  Result<ManyRequest> both = ParseManyJson(R"({"increments":[{"counter":"a"}],"window":60})", "60");
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("not both"), std::string::npos);
  EXPECT_EQ(ParseManyRequest("a 1", true, std::nullopt, {"\"k\"", "\"k\""}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ParseLines("a 1", "0x10").status().code(), Code::kInvalidArgument);
}

TEST(ParseManyRequestTest, TakesAtMostTheLimitOfItems) {
  std::string body;
  for (size_t i = 0; i <= ManyRequest::kMaxItems; ++i) body += "a 1\n";
  Result<ManyRequest> request = ParseLines(body);
  ASSERT_FALSE(request.ok());
  EXPECT_NE(request.status().message().find("at most 100000"), std::string::npos);
  body.resize(body.size() - 4);
  Result<ManyRequest> full = ParseLines(body);
  ASSERT_TRUE(full.ok()) << full.status().message();
  EXPECT_EQ(full->items.size(), ManyRequest::kMaxItems);
}

TEST(ManyFormatTest, LinesRoundTripAndRepliesRoundTrip) {
  ManyRequest request{{{"c:1", 5}, {"c:2", kMin}, {"c:1", kMax}}, 0, ""};
  std::string lines;
  FormatManyLines(request, &lines);
  EXPECT_EQ(lines, "c:1 5\nc:2 -9223372036854775808\nc:1 9223372036854775807\n");
  Result<ManyRequest> parsed = ParseLines(lines);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, request);

  EXPECT_EQ(FormatManyShareReply({2, 7, 0}), R"({"shardId":2,"applied":7})");
  EXPECT_EQ(FormatManyShareReply({2, 7, 120}), R"({"shardId":2,"applied":7,"windowEnd":120})");
  EXPECT_EQ(*ParseManyShareReply(FormatManyShareReply({2, 7, 120})), (ManyReply{2, 7, 120}));
  EXPECT_EQ(ParseManyShareReply(R"({"shardId":2})").status().code(), Code::kBadGateway);

  ManyBatchReply reply{5, {{0, 2, 0}, {2, 3, 0}}, 0};
  EXPECT_EQ(FormatManyReply(reply),
            R"({"applied":5,"parts":[{"shardId":0,"applied":2},{"shardId":2,"applied":3}]})");
  Result<ManyBatchReply> back = ParseManyReply(FormatManyReply(reply));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->applied, 5);
  EXPECT_EQ(back->parts, reply.parts);
  EXPECT_EQ(ParseManyReply(R"({"error":"no"})").status().code(), Code::kBadGateway);
}

}  // namespace
}  // namespace shardctl::core
