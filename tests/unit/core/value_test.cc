#include "core/value.h"

#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "tests/unit/core/builders.h"

namespace shardctl::core {
namespace {

using test::kMax;
using test::kMin;

struct GoodCase {
  std::string text;
  int64_t expected;
};

TEST(ParseValueTest, AcceptsDecimalIntegersWithinInt64) {
  const GoodCase cases[] = {
      {"0", 0},
      {"-0", 0},
      {"5", 5},
      {"-3", -3},
      {"42", 42},
      {"1000000", 1000000},
      {"9223372036854775807", kMax},
      {"-9223372036854775808", kMin},
  };
  for (const GoodCase& c : cases) {
    SCOPED_TRACE("text: '" + c.text + "'");
    Result<int64_t> result = ParseValue(c.text);
    ASSERT_TRUE(result.ok()) << result.status().message();
    EXPECT_EQ(*result, c.expected);
  }
}

struct BadCase {
  std::string text;
  Code expected_code;
};

TEST(ParseValueTest, RefusesEverythingButAStrictDecimalInteger) {
  const BadCase cases[] = {
      {"", Code::kInvalidArgument},      {"abc", Code::kInvalidArgument},
      {"1.5", Code::kInvalidArgument},   {"0x10", Code::kInvalidArgument},
      {"010", Code::kInvalidArgument},   {"-010", Code::kInvalidArgument},
      {"00", Code::kInvalidArgument},    {"-00", Code::kInvalidArgument},
      {"+5", Code::kInvalidArgument},    {" 5", Code::kInvalidArgument},
      {"5 ", Code::kInvalidArgument},    {"\t5", Code::kInvalidArgument},
      {"5\n", Code::kInvalidArgument},   {"-", Code::kInvalidArgument},
      {"--5", Code::kInvalidArgument},   {"5-", Code::kInvalidArgument},
      {"1e3", Code::kInvalidArgument},   {"1,000", Code::kInvalidArgument},
      {"1_000", Code::kInvalidArgument}, {std::string("5\0", 2), Code::kInvalidArgument},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE("text: '" + c.text + "'");
    Result<int64_t> result = ParseValue(c.text);
    ASSERT_FALSE(result.ok()) << "accepted as " << *result;
    EXPECT_EQ(result.status().code(), c.expected_code);
    EXPECT_FALSE(result.status().message().empty());
  }
}

TEST(ParseValueTest, DigitsOutsideInt64AreOutOfRange) {
  const std::string cases[] = {
      "9223372036854775808",   "-9223372036854775809", "99999999999999999999",
      "-99999999999999999999", "18446744073709551616",
  };
  for (const std::string& text : cases) {
    SCOPED_TRACE("text: '" + text + "'");
    Result<int64_t> result = ParseValue(text);
    ASSERT_FALSE(result.ok()) << "accepted as " << *result;
    EXPECT_EQ(result.status().code(), Code::kOutOfRange);
  }
}

TEST(ParseValueTest, MessageQuotesTheTextAndSaysWhatIsAccepted) {
  Result<int64_t> result = ParseValue("abc");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("'abc'"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("decimal integer"), std::string::npos)
      << result.status().message();
}

TEST(ParseValueTest, EmptyTextMessageSaysWhatIsAccepted) {
  Result<int64_t> result = ParseValue("");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("empty"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("decimal integer"), std::string::npos)
      << result.status().message();
}

TEST(ParseValueTest, OutOfRangeMessageQuotesTheText) {
  Result<int64_t> result = ParseValue("99999999999999999999");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("'99999999999999999999'"), std::string::npos)
      << result.status().message();
}

TEST(ParseValueTest, VeryLongGarbageIsRefusedWithAShortMessage) {
  const std::string text(10000, 'x');
  Result<int64_t> result = ParseValue(text);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kInvalidArgument);
  EXPECT_LT(result.status().message().size(), 200u);
}

TEST(ParseValueTest, VeryLongRunOfDigitsIsOutOfRange) {
  const std::string text(1000, '9');
  Result<int64_t> result = ParseValue(text);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kOutOfRange);
}

TEST(ParseValueTest, LongJunkIsInvalidNotOutOfRange) {
  std::string digits_then_letter(64, '1');
  digits_then_letter.push_back('x');
  std::string minus_digits_then_letters(70, '1');
  minus_digits_then_letters.insert(0, "-").append("abc");
  for (const std::string& text : {digits_then_letter, minus_digits_then_letters}) {
    Result<int64_t> value = ParseValue(text);
    ASSERT_FALSE(value.ok()) << text;
    EXPECT_EQ(value.status().code(), Code::kInvalidArgument) << value.status().message();
    EXPECT_LT(value.status().message().size(), 120u) << "the message quotes too much";
  }
}

}  // namespace
}  // namespace shardctl::core
