#include "core/idempotency_key.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

using ::testing::HasSubstr;

TEST(IdempotencyKeyTest, ValidKeysArePrintableAsciiFrom1To255Bytes) {
  for (const std::string& key :
       std::vector<std::string>{"a", "8e03978e-40d5-43e8-bc93-6894a57f9324", "with space",
                                "~!@#$%^&*()\"\\", std::string(255, 'k')}) {
    EXPECT_TRUE(ValidateIdempotencyKey(key).ok()) << key;
  }
}

TEST(IdempotencyKeyTest, InvalidKeysSayWhy) {
  struct Case {
    std::string key;
    std::string why;
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {std::string(256, 'k'), "256 bytes long; at most 255"},
      {"tab\there", "not printable ASCII"},
      {"new\nline", "not printable ASCII"},
      {"caf\xC3\xA9", "not printable ASCII"},
      {std::string("nul\0", 4), "not printable ASCII"},
  };
  for (const Case& c : cases) {
    Status status = ValidateIdempotencyKey(c.key);
    ASSERT_FALSE(status.ok()) << c.key;
    EXPECT_EQ(status.code(), Code::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr(c.why)) << c.key;
  }
}

TEST(IdempotencyKeyTest, HeaderIsAStructuredFieldStringOrABareToken) {
  struct Case {
    std::string header;
    std::string key;
  };
  const std::vector<Case> cases = {
      {R"("8e03978e-40d5-43e8-bc93-6894a57f9324")", "8e03978e-40d5-43e8-bc93-6894a57f9324"},
      {"8e03978e-40d5", "8e03978e-40d5"},
      {R"("with space")", "with space"},
      {R"("say \"hi\" \\ bye")", R"(say "hi" \ bye)"},
      {R"(  "padded"  )", "padded"},
      {"  bare\t", "bare"},
      {R"(back\slash)", R"(back\slash)"},
      {"\"" + std::string(255, 'k') + "\"", std::string(255, 'k')},
  };
  for (const Case& c : cases) {
    Result<std::string> key = ParseIdempotencyKeyHeader(c.header);
    ASSERT_TRUE(key.ok()) << c.header << ": " << key.status().message();
    EXPECT_EQ(*key, c.key) << c.header;
  }
}

TEST(IdempotencyKeyTest, BadHeadersAreInvalidArgument) {
  for (const std::string& header : std::vector<std::string>{
           "", "   ", R"("")", "\"" + std::string(256, 'k') + "\"", std::string(256, 'k'),
           R"("unclosed)", R"("one" "two")", R"("a";param=1)", R"("bad \n escape")", "two words",
           "caf\xC3\xA9", "\"tab\there\""}) {
    Result<std::string> key = ParseIdempotencyKeyHeader(header);
    EXPECT_FALSE(key.ok()) << header;
    if (!key.ok()) {
      EXPECT_EQ(key.status().code(), Code::kInvalidArgument);
      EXPECT_THAT(key.status().message(), HasSubstr("Idempotency-Key")) << header;
    }
  }
}

TEST(IdempotencyKeyTest, FormattedHeaderParsesBackToTheKey) {
  for (const std::string& key : std::vector<std::string>{
           "plain", R"(quote " and \ backslash)", " spaces ", "\"", std::string(255, '\\')}) {
    std::string header = FormatIdempotencyKeyHeader(key);
    EXPECT_TRUE(header.starts_with('"') && header.ends_with('"')) << header;
    Result<std::string> parsed = ParseIdempotencyKeyHeader(header);
    ASSERT_TRUE(parsed.ok()) << header << ": " << parsed.status().message();
    EXPECT_EQ(*parsed, key);
  }
  EXPECT_EQ(FormatIdempotencyKeyHeader(R"(a"b\c)"), R"("a\"b\\c")");
}

}  // namespace
}  // namespace shardctl::core
