// Real HTTP clients that send request bodies in the chunked transfer coding,
// as they do when they cannot know the length in advance, against `shardctl
// serve`: Python's http.client (encode_chunked=True), Node's fetch with a
// ReadableStream body, and curl with "Transfer-Encoding: chunked". Each
// increment they send is counted once; a body over 64 KiB gets a 413 the
// client can read, and counts nothing.
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

// Sends three bodies on one keep-alive connection, each as an iterable of
// chunks, and prints "status body Connection-header" for each answer.
constexpr const char* kPythonClient = R"(import http.client
import sys

conn = http.client.HTTPConnection(sys.argv[1], timeout=10)


def post(chunks):
    conn.request("POST", "/increment", body=iter(chunks),
                 headers={"Content-Type": "application/json"}, encode_chunked=True)
    answer = conn.getresponse()
    print(answer.status, answer.read().decode(), answer.getheader("Connection"))


post([b'{"value"', b":5}"])
post([b'{"value":', b"4", b',"counter":"py"}'])
post([b" " * 1024] * 70)
)";

// The same with fetch: each enqueued piece goes out as one chunk.
constexpr const char* kNodeClient = R"((async () => {
  const url = `http://${process.argv[2]}/increment`;
  const post = async (pieces) => {
    const body = new ReadableStream({
      start(controller) {
        for (const piece of pieces) {
          controller.enqueue(typeof piece === 'string' ? new TextEncoder().encode(piece) : piece);
        }
        controller.close();
      },
    });
    const answer = await fetch(url, {
      method: 'POST', body, duplex: 'half', headers: {'Content-Type': 'application/json'},
    });
    console.log(answer.status, await answer.text());
  };
  await post(['{"value"', ':7}']);
  await post(['{"value":2,', '"counter":"node"}']);
  await post(Array.from({length: 70}, () => new Uint8Array(1024).fill(32)));
})().catch((error) => {
  console.log('failed:', error.cause || error);
  process.exit(1);
});
)";

class ChunkedClientsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.ready()); }

  // Writes `text` to a file in the test's directory and returns its path.
  std::string Script(const std::string& name, const std::string& text) {
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string Total(const std::string& counter = "") {
    return HttpConnection(cluster_.aggregator())
        .Get(counter.empty() ? "/total" : "/total?counter=" + counter)
        .body;
  }

  Cluster cluster_{{"--in-memory"}};
  TempDir dir_;
};

TEST_F(ChunkedClientsTest, PythonHttpClientWithEncodeChunked) {
  RunResult run =
      RunCommand("python3 " + Script("client.py", kPythonClient) + " " + cluster_.aggregator());
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out,
            "200 {\"success\":true,\"shardId\":2,\"count\":5} None\n"
            "200 {\"success\":true,\"shardId\":1,\"count\":4,\"counter\":\"py\"} None\n"
            "413 {\"error\":\"the request body is larger than 65536 bytes\"} close\n");
  EXPECT_EQ(Total(), R"({"total":5})");
  EXPECT_EQ(Total("py"), R"({"total":4,"counter":"py"})");
}

TEST_F(ChunkedClientsTest, NodeFetchWithAStreamBody) {
  RunResult run =
      RunCommand("node " + Script("client.js", kNodeClient) + " " + cluster_.aggregator());
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out,
            "200 {\"success\":true,\"shardId\":1,\"count\":7}\n"
            "200 {\"success\":true,\"shardId\":2,\"count\":2,\"counter\":\"node\"}\n"
            "413 {\"error\":\"the request body is larger than 65536 bytes\"}\n");
  EXPECT_EQ(Total(), R"({"total":7})");
  EXPECT_EQ(Total("node"), R"({"total":2,"counter":"node"})");
}

TEST_F(ChunkedClientsTest, CurlWithTransferEncodingChunked) {
  // curl sends what it reads from stdin as one chunk per read.
  const std::string curl = "curl -sS -v -H 'Transfer-Encoding: chunked' --data-binary @- ";
  const std::string url = cluster_.url() + "/increment";
  RunResult run = RunCommand("printf '{\"value\":3}' | " + curl + url);
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("> Transfer-Encoding: chunked"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("> Content-Length"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find(R"({"success":true,"shardId":0,"count":3})"), std::string::npos)
      << run.out;

  // Asked to, curl waits for 100 Continue before its chunks.
  run = RunCommand("printf '{\"value\":3}' | " + curl + "-H 'Expect: 100-continue' " + url);
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("< HTTP/1.1 100 Continue"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find(R"({"success":true,"shardId":0,"count":6})"), std::string::npos)
      << run.out;

  run = RunCommand(
      "head -c 200000 /dev/zero | tr '\\0' ' ' | curl -sS -o /dev/null -w "
      "'%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @- " +
      url);
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out, "413");
  EXPECT_EQ(Total(), R"({"total":6})");
}

}  // namespace
}  // namespace shardctl::testing
