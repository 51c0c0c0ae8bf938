// etcd's v3 gateway JSON, with answers as etcd 3.4.23 sent them.
#include "topo/etcd_json.h"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace shardctl::topo {
namespace {

using core::Code;
using nlohmann::json;

constexpr char kHeader[] =
    R"("header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952",)"
    R"("revision":"6","raft_term":"2"})";

std::string Answer(const std::string& fields) {
  return std::string("{") + kHeader + (fields.empty() ? "" : "," + fields) + "}";
}

TEST(EtcdJsonTest, Base64RoundTrips) {
  const std::pair<std::string, std::string> cases[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {std::string("\0\xff", 2), "AP8="},
      {"/a/b", "L2EvYg=="},
  };
  for (const auto& [bytes, text] : cases) {
    EXPECT_EQ(EncodeBase64(bytes), text);
    EXPECT_EQ(DecodeBase64(text), bytes) << text;
  }
}

TEST(EtcdJsonTest, Base64RefusesWhatIsNotBase64) {
  for (const char* text : {"Zg=", "Z===", "=Zg=", "Zg==Zg==", "Zm9v!A==", "Zm 9", "Zg=a"}) {
    EXPECT_EQ(DecodeBase64(text), std::nullopt) << text;
  }
}

TEST(EtcdJsonTest, PrefixEndCoversExactlyThePrefix) {
  const std::pair<std::string, std::string> cases[] = {
      {"/a/", "/a0"},
      {"a\xff", "b"},
      {"\xff\xff", std::string(1, '\0')},
      {"", std::string(1, '\0')},
  };
  for (const auto& [prefix, end] : cases) EXPECT_EQ(PrefixEnd(prefix), end) << prefix;
}

TEST(EtcdJsonTest, RequestsAreWhatEtcdAccepts) {
  // The forms tried against etcd 3.4.23.
  EXPECT_EQ(json::parse(CompareAndSetRequest("a", 0, "v1", 0)), json::parse(R"({
    "compare":[{"key":"YQ==","target":"MOD","result":"EQUAL","mod_revision":"0"}],
    "success":[{"requestPut":{"key":"YQ==","value":"djE="}}],
    "failure":[{"requestRange":{"key":"YQ=="}}]})"));
  EXPECT_EQ(json::parse(CompareAndSetRequest("a", 7, "", 42))["success"][0]["requestPut"],
            json::parse(R"({"key":"YQ==","value":"","lease":"42"})"));
  EXPECT_EQ(json::parse(CompareAndDeleteRequest("a", 7))["success"][0],
            json::parse(R"({"requestDeleteRange":{"key":"YQ=="}})"));
  EXPECT_EQ(json::parse(ListRequest("a")), json::parse(R"({"key":"YQ==","range_end":"Yg=="})"));
  EXPECT_EQ(json::parse(WatchRequest("", 5)),
            json::parse(R"({"create_request":{"key":"AA==","range_end":"AA==",
                            "start_revision":"5"}})"));
  EXPECT_EQ(json::parse(WatchRequest("a", 0)),
            json::parse(R"({"create_request":{"key":"YQ==","range_end":"Yg=="}})"));
  EXPECT_EQ(json::parse(LeaseRequest(2324035759005887243)),
            json::parse(R"({"ID":"2324035759005887243"})"));
}

TEST(EtcdJsonTest, CommitIfUnchangedIsARangeCompareAndAllTheWrites) {
  EXPECT_EQ(json::parse(CommitIfUnchangedRequest("a", 7, {{"a1", "v"}, {"a2", std::nullopt}})),
            json::parse(R"({
    "compare":[{"key":"YQ==","range_end":"Yg==","target":"MOD","result":"LESS",
                "mod_revision":"8"}],
    "success":[{"requestPut":{"key":"YTE=","value":"dg=="}},
               {"requestDeleteRange":{"key":"YTI="}}]})"));
  // A failed compare reads nothing: no key revision to report.
  core::Result<core::CasResult> failed =
      ParseTxn(R"({"header":{"revision":"9"}})", /*read_on_failure=*/false);
  ASSERT_TRUE(failed.ok()) << failed.status().message();
  EXPECT_FALSE(failed->succeeded);
}

TEST(EtcdJsonTest, ParsesARange) {
  core::Result<core::KeyRange> range = ParseRange(Answer(
      R"("kvs":[{"key":"YQ==","create_revision":"2","mod_revision":"2","version":"1",)"
      R"("value":"djE="},{"key":"Yg==","create_revision":"3","mod_revision":"5","version":"2",)"
      R"("lease":"77"}],"count":"2")"));
  ASSERT_TRUE(range.ok()) << range.status().message();
  EXPECT_EQ(range->revision, 6);
  ASSERT_EQ(range->kvs.size(), 2u);
  EXPECT_EQ(range->kvs[0], (core::KeyValue{"a", "v1", 2, 0}));
  EXPECT_EQ(range->kvs[1], (core::KeyValue{"b", "", 5, 77}));  // an empty value is left out
  core::Result<core::KeyRange> none = ParseRange(Answer(""));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->kvs.empty());
}

TEST(EtcdJsonTest, ParsesATxnThatSucceededOrFailed) {
  struct Case {
    const char* name;
    std::string body;
    core::CasResult result;
  };
  const Case cases[] = {
      {"succeeded: the txn's revision",
       Answer(R"("succeeded":true,"responses":[{"response_put":{"header":{"revision":"6"}}}])"),
       {true, 6}},
      {"failed (no \"succeeded\"): the key's revision from the failure branch",
       Answer(R"("responses":[{"response_range":{"header":{"revision":"6"},"kvs":[{"key":"YQ==",)"
              R"("create_revision":"2","mod_revision":"4","version":"1","value":"djE="}],)"
              R"("count":"1"}}])"),
       {false, 4}},
      {"failed on an absent key: revision 0",
       Answer(R"("responses":[{"response_range":{"header":{"revision":"6"}}}])"),
       {false, 0}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    core::Result<core::CasResult> result = ParseTxn(c.body);
    ASSERT_TRUE(result.ok()) << result.status().message();
    EXPECT_EQ(result->succeeded, c.result.succeeded);
    EXPECT_EQ(result->revision, c.result.revision);
  }
}

TEST(EtcdJsonTest, ParsesLeaseAnswers) {
  EXPECT_EQ(*ParseGrant(Answer(R"("ID":"2324035759005887243","TTL":"5")")), 2324035759005887243);
  EXPECT_EQ(ParseGrant(Answer(R"("TTL":"5")")).status().code(), Code::kUnavailable);
  EXPECT_TRUE(ParseKeepAlive("{\"result\":" + Answer(R"("ID":"77","TTL":"5")") + "}\n").ok());
  core::Status gone = ParseKeepAlive("{\"result\":" + Answer(R"("ID":"77")") + "}\n");
  EXPECT_EQ(gone.code(), Code::kInvalidArgument);
  EXPECT_NE(gone.message().find("lease 77"), std::string::npos);
}

TEST(EtcdJsonTest, TranslatesEtcdErrors) {
  struct Case {
    int http_status;
    std::string body;
    Code code;
  };
  const Case cases[] = {
      {404,
       R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested )"
       R"(lease not found","code":5})",
       Code::kInvalidArgument},
      {503,
       R"({"error":"etcdserver: request timed out","message":"etcdserver: request timed out",)"
       R"("code":14})",
       Code::kTimeout},
      {400, R"({"error":"bad","message":"invalid character 'g'","code":3})", Code::kUnavailable},
      {404, "Not Found\n", Code::kUnavailable},
  };
  for (const Case& c : cases) {
    core::Status status = ParseError(c.http_status, c.body);
    EXPECT_EQ(status.code(), c.code) << c.body;
  }
}

TEST(EtcdJsonTest, ParsesWatchMessages) {
  core::Result<WatchMessage> created =
      ParseWatchMessage(R"({"result":{)" + std::string(kHeader) + R"(,"created":true}})");
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_TRUE(created->created);
  EXPECT_TRUE(created->events.empty());

  core::Result<WatchMessage> events = ParseWatchMessage(
      R"({"result":{"header":{"revision":"6"},"events":[)"
      R"({"kv":{"key":"YWI=","create_revision":"5","mod_revision":"5","version":"1","value":"eA=="}},)"
      R"({"type":"DELETE","kv":{"key":"YWI=","mod_revision":"6"}}]}})");
  ASSERT_TRUE(events.ok()) << events.status().message();
  EXPECT_FALSE(events->created);
  EXPECT_EQ(events->events,
            (std::vector<core::WatchEvent>{
                {core::WatchEvent::Type::kPut, core::KeyValue{"ab", "x", 5, 0}},
                {core::WatchEvent::Type::kDelete, core::KeyValue{"ab", "", 6, 0}}}));
}

TEST(EtcdJsonTest, AWatchThatEtcdEndsFails) {
  const std::pair<std::string, Code> cases[] = {
      {R"({"result":{"header":{},"canceled":true,"compact_revision":"5"}})", Code::kOutOfRange},
      {R"({"result":{"header":{},"canceled":true,"cancel_reason":"no"}})", Code::kUnavailable},
      {R"({"error":{"grpc_code":14,"message":"transport is closing"}})", Code::kUnavailable},
      {R"({"result":{"events":[{"kv":{"key":"!!"}}]}})", Code::kUnavailable},
      {"{\"result\":", Code::kUnavailable},
  };
  for (const auto& [line, code] : cases) {
    EXPECT_EQ(ParseWatchMessage(line).status().code(), code) << line;
  }
}

}  // namespace
}  // namespace shardctl::topo
