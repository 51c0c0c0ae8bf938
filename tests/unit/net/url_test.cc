#include "net/url.h"

#include <string>

#include <gtest/gtest.h>

namespace shardctl::net {
namespace {

struct GoodCase {
  std::string text;
  std::string expected_host;
  int expected_port;
};

TEST(ParseUrlTest, AcceptsHttpUrlsAndHostPort) {
  const GoodCase cases[] = {
      {"http://127.0.0.1:4000", "127.0.0.1", 4000},
      {"http://localhost:3001", "localhost", 3001},
      {"http://example.com:80", "example.com", 80},
      {"127.0.0.1:4000", "127.0.0.1", 4000},
      {"localhost:3001", "localhost", 3001},
      {"http://127.0.0.1:4000/", "127.0.0.1", 4000},
      {"localhost:3001/", "localhost", 3001},
      {"http://[::1]:4000", "::1", 4000},
      {"http://[::1]:4000/", "::1", 4000},
      {"[::1]:4000", "::1", 4000},
      {"http://[2001:db8::1]:8080", "2001:db8::1", 8080},
      {"http://host:1", "host", 1},
      {"http://host:65535", "host", 65535},
      {"HTTP://host:2", "host", 2},
  };
  for (const GoodCase& c : cases) {
    SCOPED_TRACE("text: '" + c.text + "'");
    core::Result<Url> url = ParseUrl(c.text);
    ASSERT_TRUE(url.ok()) << url.status().message();
    EXPECT_EQ(url->host, c.expected_host);
    EXPECT_EQ(url->port, c.expected_port);
  }
}

TEST(ParseUrlTest, MissingPortMeansPort80) {
  const GoodCase cases[] = {
      {"http://example.com", "example.com", 80},
      {"http://example.com/", "example.com", 80},
      {"http://[::1]", "::1", 80},
      {"http://[::1]/", "::1", 80},
  };
  for (const GoodCase& c : cases) {
    SCOPED_TRACE("text: '" + c.text + "'");
    core::Result<Url> url = ParseUrl(c.text);
    ASSERT_TRUE(url.ok()) << url.status().message();
    EXPECT_EQ(url->host, c.expected_host);
    EXPECT_EQ(url->port, c.expected_port);
  }
}

struct BadCase {
  std::string text;
  std::string message_part;  // a piece of the message that says what is wrong
};

TEST(ParseUrlTest, RefusesWhatIsNotAServerAddress) {
  const BadCase cases[] = {
      {"ftp://localhost:4000", "scheme 'ftp'"},
      {"://localhost:4000", "scheme ''"},
      {"http://localhost:4000/total", "path"},
      {"http://localhost:4000/increment/", "path"},
      {"localhost:4000/x", "path"},
      {"http://localhost:4000//", "path"},
      {"http://localhost:0", "port"},
      {"http://localhost:65536", "port"},
      {"http://localhost:99999999999", "port"},
      {"http://localhost:-1", "port"},
      {"http://localhost:abc", "port"},
      {"http://localhost:80abc", "port"},
      {"http://localhost: 80", "port"},
      {"http://localhost:", "port"},
      {"localhost:", "port"},
      {"http://[::1]:", "port"},
      {"http://[::1]:0", "port"},
      {"http://:4000", "host is missing"},
      {":4000", "host is missing"},
      {"http://", "host is missing"},
      {"", "host is missing"},
      {"http:///", "host is missing"},
      {"http://[]:4000", "host is missing"},
      {"http://::1:4000", "brackets"},
      {"::1", "brackets"},
      {"http://[::1:4000", "']'"},
      {"http://[::1]4000", "after ']'"},
      {"http://host?x=1", "query"},
      {"http://host:1?x=1", "query"},
      {"http://host:1#top", "query"},
      {"http://user@host:1", "character '@'"},
      {"http://ho st:1", "character ' '"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE("text: '" + c.text + "'");
    core::Result<Url> url = ParseUrl(c.text);
    ASSERT_FALSE(url.ok()) << "accepted as " << url->ToString();
    EXPECT_EQ(url.status().code(), core::Code::kInvalidArgument);
    EXPECT_NE(url.status().message().find(c.message_part), std::string::npos)
        << url.status().message();
  }
}

TEST(ParseUrlTest, HttpsMeansTlsOnPort443UnlessGiven) {
  core::Result<Url> url = ParseUrl("https://localhost:4000");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->port, 4000);
  EXPECT_EQ(url->ToString(), "https://localhost:4000");
  url = ParseUrl("HTTPS://[::1]/");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->ToString(), "https://[::1]:443");
  url = ParseUrl("127.0.0.1:4000");
  ASSERT_TRUE(url.ok());
  EXPECT_FALSE(url->tls);
}

TEST(ParseUrlTest, MessageQuotesTheTextAndTheExpectedForm) {
  core::Result<Url> url = ParseUrl("ftp://localhost:4000");
  ASSERT_FALSE(url.ok());
  EXPECT_NE(url.status().message().find("'ftp://localhost:4000'"), std::string::npos)
      << url.status().message();
  EXPECT_NE(url.status().message().find("http://HOST:PORT"), std::string::npos)
      << url.status().message();
}

TEST(ParseUrlTest, ToStringRoundTrips) {
  const std::string cases[] = {
      "http://127.0.0.1:4000",
      "http://localhost:1",
      "http://[::1]:65535",
      "http://[2001:db8::1]:8080",
  };
  for (const std::string& text : cases) {
    SCOPED_TRACE("text: '" + text + "'");
    core::Result<Url> url = ParseUrl(text);
    ASSERT_TRUE(url.ok()) << url.status().message();
    EXPECT_EQ(url->ToString(), text);
  }
}

TEST(UrlTest, ToStringAndHostPortBracketIpv6) {
  const Url ipv4{"127.0.0.1", 4000};
  EXPECT_EQ(ipv4.ToString(), "http://127.0.0.1:4000");
  EXPECT_EQ(ipv4.HostPort(), "127.0.0.1:4000");

  const Url ipv6{"::1", 3001};
  EXPECT_EQ(ipv6.ToString(), "http://[::1]:3001");
  EXPECT_EQ(ipv6.HostPort(), "[::1]:3001");
}

TEST(UrlTest, HostPortOfAParsedUrlWithoutSchemeIsTheInput) {
  core::Result<Url> url = ParseUrl("localhost:3001");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->HostPort(), "localhost:3001");
  EXPECT_EQ(url->ToString(), "http://localhost:3001");
}

TEST(JoinHostPortTest, BracketsOnlyIpv6Hosts) {
  EXPECT_EQ(JoinHostPort("localhost", 80), "localhost:80");
  EXPECT_EQ(JoinHostPort("127.0.0.1", 4000), "127.0.0.1:4000");
  EXPECT_EQ(JoinHostPort("::1", 4000), "[::1]:4000");
  EXPECT_EQ(JoinHostPort("2001:db8::1", 65535), "[2001:db8::1]:65535");
}

TEST(CheckOriginTest, AcceptsWhatBrowsersSendAndRefusesTheRest) {
  for (const char* good : {"http://127.0.0.1:8080", "https://app.example.com", "http://[::1]:3000",
                           "http://localhost"}) {
    EXPECT_TRUE(CheckOrigin(good).ok()) << good;
  }
  for (const char* bad : {"app.example.com", "https://app.example.com/", "http://a.b/path",
                          "ftp://a.b", "http://", "http://a b", "*", "null"}) {
    core::Status status = CheckOrigin(bad);
    EXPECT_FALSE(status.ok()) << bad;
    EXPECT_NE(status.message().find("expected scheme://host[:port]"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace shardctl::net
