#include "core/counter_name.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace shardctl::core {
namespace {

TEST(ValidateCounterNameTest, AcceptsOneTo200BytesOfAllowedCharacters) {
  std::vector<std::string> cases = {
      "a",
      "Z",
      "0",
      "api:client42",
      "a/b.c-d_e",
      "pageviews",
      "CamelCase.v2",
      "_:.-/",
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
      std::string(kMaxCounterNameBytes, 'x'),
  };
  // Built apart: GCC 12 warns falsely (-Warray-bounds) on a concatenation
  // inside the initializer list.
  std::string slash_at_the_end(kMaxCounterNameBytes - 1, 'a');
  slash_at_the_end.push_back('/');
  cases.push_back(slash_at_the_end);
  for (const std::string& name : cases) {
    SCOPED_TRACE("name: " + name);
    Status valid = ValidateCounterName(name);
    EXPECT_TRUE(valid.ok()) << valid.message();
  }
}

TEST(ValidateCounterNameTest, TheDefaultCounterNameIsValid) {
  EXPECT_TRUE(ValidateCounterName(kDefaultCounter).ok());
}

TEST(ValidateCounterNameTest, TheLimitIs200Bytes) {
  EXPECT_EQ(kMaxCounterNameBytes, 200u);
  EXPECT_TRUE(ValidateCounterName(std::string(200, 'a')).ok());
  EXPECT_FALSE(ValidateCounterName(std::string(201, 'a')).ok());
}

struct BadNameCase {
  std::string name;
  std::string what;          // for the trace
  std::string message_part;  // a piece of the message that says what was wrong
};

TEST(ValidateCounterNameTest, RefusesEmptyTooLongAndDisallowedCharacters) {
  const BadNameCase cases[] = {
      {"", "empty", "empty"},
      {std::string(kMaxCounterNameBytes + 1, 'a'), "201 bytes", "201 bytes"},
      {std::string(1000, 'a'), "1000 bytes", "1000 bytes"},
      {"a b", "space", "position 2"},
      {" a", "leading space", "position 1"},
      {"a@b", "at sign", "'@'"},
      {"caf\xc3\xa9", "UTF-8 e acute", "byte 0xc3 at position 4"},
      {"a\"b", "double quote", "byte 0x22"},
      {"a'b", "single quote", "position 2"},
      {"a\\b", "backslash", "byte 0x5c"},
      {std::string("a\0b", 3), "NUL byte", "byte 0x00"},
      {"a\nb", "newline", "byte 0x0a"},
      {"a\tb", "tab", "byte 0x09"},
      {"a\x7f", "DEL", "byte 0x7f"},
      {"a\xff", "byte 0xff", "byte 0xff"},
      // Characters with a meaning in URLs: names go into query strings unescaped.
      {"a?b", "question mark", "'?'"},
      {"a&b", "ampersand", "'&'"},
      {"a=b", "equals sign", "'='"},
      {"a#b", "hash", "'#'"},
      {"a%20b", "percent", "'%'"},
      {"a+b", "plus", "'+'"},
      {"a,b", "comma", "','"},
  };
  for (const BadNameCase& c : cases) {
    SCOPED_TRACE("name with " + c.what);
    Status valid = ValidateCounterName(c.name);
    ASSERT_FALSE(valid.ok());
    EXPECT_EQ(valid.code(), Code::kInvalidArgument);
    EXPECT_NE(valid.message().find(c.message_part), std::string::npos) << valid.message();
  }
}

TEST(ValidateCounterNameTest, RefusalSaysWhatIsAllowed) {
  Status valid = ValidateCounterName("a b");
  ASSERT_FALSE(valid.ok());
  EXPECT_NE(valid.message().find("letters, digits and _ . : - /"), std::string::npos)
      << valid.message();
}

TEST(ValidateCounterNameTest, RefusalNeverQuotesAControlByteOrQuoteAsIs) {
  // The message ends up in JSON and on a terminal: bytes that would need
  // escaping are shown by their hex value.
  for (const std::string& name :
       {std::string("a\nb"), std::string("a\"b"), std::string("a\\b"), std::string("a\x1b[31m")}) {
    Status valid = ValidateCounterName(name);
    ASSERT_FALSE(valid.ok());
    for (char c : {'\n', '"', '\\', '\x1b'}) {
      EXPECT_EQ(valid.message().find(c), std::string::npos) << valid.message();
    }
  }
}

}  // namespace
}  // namespace shardctl::core
