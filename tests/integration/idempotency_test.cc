// Retries that never double count: the Idempotency-Key header on POST
// /increment, over real HTTP, against the aggregator (shards in process or in
// their own processes) and a shard directly; keys that survive kill -9; and
// `shardctl inc` retrying against a server that starts late or loses the
// first answer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

// One keep-alive connection that sends POST /increment with Idempotency-Key
// headers (none, one or several).
class KeyedClient {
 public:
  explicit KeyedClient(const std::string& host_port)
      : client_(host_port.substr(0, host_port.rfind(':')),
                std::stoi(host_port.substr(host_port.rfind(':') + 1))) {
    client_.set_tcp_nodelay(true);
    client_.set_keep_alive(true);
    client_.set_connection_timeout(5, 0);
    client_.set_read_timeout(10, 0);
  }

  Reply Increment(const std::string& body, const std::vector<std::string>& keys) {
    httplib::Headers headers;
    for (const std::string& key : keys) headers.emplace("Idempotency-Key", key);
    httplib::Result result = client_.Post("/increment", headers, body, "application/json");
    if (!result) return {};
    return {result->status, result->body, result->get_header_value("Content-Type")};
  }
  Reply Increment(const std::string& body, const std::string& key) {
    return Increment(body, std::vector<std::string>{key});
  }
  std::string Get(const std::string& path) {
    httplib::Result result = client_.Get(path);
    return result ? result->body : std::string();
  }

 private:
  httplib::Client client_;
};

// The checks every server that takes POST /increment must pass, whether it is
// the aggregator or a shard. `http` talks to it; `total` reads the sum.
void ExpectFirstAnswerOnRetry(KeyedClient& http, const std::function<std::string()>& total) {
  Reply first = http.Increment(R"({"value":5})", R"("order-1")");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(http.Increment(R"({"value":5})", R"("")").status, 400);  // an empty key
  ASSERT_EQ(http.Increment(R"({"value":2})", std::vector<std::string>{}).status, 200);
  for (const char* same_key : {R"("order-1")", "order-1", R"(  "order-1" )"}) {
    Reply retry = http.Increment(R"({"value":5})", same_key);
    EXPECT_EQ(retry.status, 200) << same_key;
    EXPECT_EQ(retry.body, first.body) << same_key;
    EXPECT_EQ(retry.content_type, "application/json");
  }
  EXPECT_EQ(total(), "7");
}

void ExpectKeyReusedFor422(KeyedClient& http, const std::function<std::string()>& total) {
  ASSERT_EQ(http.Increment(R"({"value":5})", R"("k")").status, 200);
  // Each differs in one field; 8 routes like 5 with 3 shards.
  for (const char* other :
       {R"({"value":8})", R"({"value":5,"counter":"other"})", R"({"value":5,"window":60})"}) {
    Reply reply = http.Increment(other, R"("k")");
    EXPECT_EQ(reply.status, 422) << other << ": " << reply.body;
    EXPECT_NE(reply.body.find(R"(Idempotency-Key \"k\" was already used)"), std::string::npos)
        << reply.body;
  }
  EXPECT_EQ(total(), "5");
}

void ExpectBadKeysAre400(KeyedClient& http, const std::function<std::string()>& total) {
  // (A header with no value at all never reaches shardctl: cpp-httplib 0.11
  // drops it, so it is the same as no header.)
  const std::vector<std::vector<std::string>> bad = {
      {R"("")"},
      {"\"" + std::string(256, 'k') + "\""},
      {std::string(256, 'k')},
      {R"("unclosed)"},
      {R"("bad \q escape")"},
      {"two words"},
      {R"("a")", R"("b")"},  // two headers
      {R"("a")", R"("a")"},
  };
  for (const auto& keys : bad) {
    Reply reply = http.Increment(R"({"value":5})", keys);
    EXPECT_EQ(reply.status, 400) << keys.front() << " (" << keys.size() << " headers)";
    EXPECT_NE(reply.body.find("Idempotency-Key"), std::string::npos) << reply.body;
  }
  // The longest key there may be works.
  EXPECT_EQ(http.Increment(R"({"value":1})", "\"" + std::string(255, 'k') + "\"").status, 200);
  EXPECT_EQ(total(), "1");
}

std::string TotalOf(KeyedClient& http) {
  std::string body = http.Get("/total");  // {"total":T}
  size_t colon = body.find(':');
  return colon == std::string::npos ? body : body.substr(colon + 1, body.size() - colon - 2);
}
std::string CountOf(KeyedClient& http) {
  std::string body = http.Get("/count");  // {"shardId":k,"count":c}
  size_t at = body.find("\"count\":");
  return at == std::string::npos ? body : body.substr(at + 8, body.size() - at - 9);
}

// --- The aggregator, shards in process ------------------------------------------

class IdempotencyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.ready()); }
  std::function<std::string()> Total() {
    return [this] { return TotalOf(http_); };
  }

  Cluster cluster_;
  KeyedClient http_{cluster_.aggregator()};
};

TEST_F(IdempotencyTest, AggregatorAnswersARetryWithTheFirstAnswerAndCountsOnce) {
  ExpectFirstAnswerOnRetry(http_, Total());
}

TEST_F(IdempotencyTest, AggregatorAnswers422ForAKeyReusedWithAnotherIncrement) {
  ExpectKeyReusedFor422(http_, Total());
}

TEST_F(IdempotencyTest, AggregatorAnswers400ForABadKeyAndCountsNothing) {
  ExpectBadKeysAre400(http_, Total());
}

TEST_F(IdempotencyTest, ShardAnswersARetryWithTheFirstAnswerAndCountsOnce) {
  KeyedClient shard(cluster_.shard(2));
  ExpectFirstAnswerOnRetry(shard, [&] { return CountOf(shard); });
}

TEST_F(IdempotencyTest, ShardAnswers422ForAKeyReusedWithAnotherIncrement) {
  KeyedClient shard(cluster_.shard(2));
  ExpectKeyReusedFor422(shard, [&] { return CountOf(shard); });
}

TEST_F(IdempotencyTest, ShardAnswers400ForABadKeyAndCountsNothing) {
  KeyedClient shard(cluster_.shard(1));
  ExpectBadKeysAre400(shard, [&] { return CountOf(shard); });
}

TEST_F(IdempotencyTest, KeysOfTheAggregatorAndOfAShardAreTheSameKeys) {
  // The aggregator passes the key to the shard that keeps it.
  Reply first = http_.Increment(R"({"value":5})", R"("shared")");
  ASSERT_EQ(first.status, 200);
  KeyedClient shard(cluster_.shard(2));
  Reply direct = shard.Increment(R"({"value":5})", R"("shared")");
  EXPECT_EQ(direct.status, 200);
  EXPECT_EQ(direct.body, first.body);
  EXPECT_EQ(TotalOf(http_), "5");
}

TEST(IdempotencyConcurrencyTest, SimultaneousRetriesApplyOnceAndSee409WhileInFlight) {
  // --fsync always keeps each increment in flight for a disk sync, so
  // simultaneous copies of a request meet it there, when several loops serve
  // them (with one, the default for always, copies wait their turn and get
  // the first answer).
  Cluster cluster({"--fsync", "always", "--threads", "4"});
  ASSERT_TRUE(cluster.ready());
  constexpr int kCopies = 6;
  constexpr int kMaxRounds = 300;
  std::vector<std::unique_ptr<KeyedClient>> clients;
  for (int i = 0; i < kCopies; ++i) {
    clients.push_back(std::make_unique<KeyedClient>(cluster.aggregator()));
  }
  int rounds = 0, conflicts = 0;
  for (; rounds < kMaxRounds && conflicts == 0; ++rounds) {
    const std::string key = "\"round-" + std::to_string(rounds) + "\"";
    std::barrier start(kCopies);
    std::vector<std::future<Reply>> replies;
    for (auto& client : clients) {
      replies.push_back(std::async(std::launch::async, [&start, &client, &key] {
        start.arrive_and_wait();
        return client->Increment(R"({"value":3})", key);
      }));
    }
    std::set<std::string> answers;
    for (auto& reply : replies) {
      Reply got = reply.get();
      if (got.status == 409) {
        ++conflicts;
        EXPECT_NE(got.body.find("still being served"), std::string::npos) << got.body;
      } else {
        EXPECT_EQ(got.status, 200) << got.body;
        answers.insert(got.body);
      }
    }
    // Every copy that was answered got the one answer: the count after one increment.
    EXPECT_EQ(answers.size(), 1u);
    if (!answers.empty()) {
      EXPECT_EQ(*answers.begin(),
                R"({"success":true,"shardId":0,"count":)" + std::to_string(3 * (rounds + 1)) + "}");
    }
    ASSERT_EQ(TotalOf(*clients[0]), std::to_string(3 * (rounds + 1)));
  }
  EXPECT_GT(conflicts, 0) << "no copy ever arrived while another was in flight in " << rounds
                          << " rounds";
}

TEST(IdempotencyWindowTest, KeyIsForgottenOnceItsWindowHasPassed) {
  Cluster cluster({"--idempotency-window", "1"});
  ASSERT_TRUE(cluster.ready());
  KeyedClient http(cluster.aggregator());
  Reply first = http.Increment(R"({"value":5})", R"("k")");
  ASSERT_EQ(first.status, 200);
  // Within the window a retry gets the first answer; once it has passed (a
  // second or two, with the once-a-second sweep), the same key counts anew.
  Reply later;
  auto deadline = Clock::now() + 10s;
  do {
    later = http.Increment(R"({"value":5})", R"("k")");
    ASSERT_EQ(later.status, 200) << later.body;
    if (later.body == first.body) std::this_thread::sleep_for(50ms);  // polling the clock
  } while (later.body == first.body && Clock::now() < deadline);
  EXPECT_EQ(later.body, R"({"success":true,"shardId":2,"count":10})");
  EXPECT_EQ(TotalOf(http), "10");
}

// --- Shards in their own processes -------------------------------------------------

TEST(IdempotencySeparateRolesTest, AggregatorForwardsTheKeyToTheShardOverHttp) {
  std::vector<std::unique_ptr<ServerProcess>> shards;
  std::vector<std::string> aggregator_args = {"serve", "--role", "aggregator", "--port", "0"};
  std::vector<std::string> shard_addresses;
  for (int id = 0; id < 3; ++id) {
    shards.push_back(std::make_unique<ServerProcess>(
        std::vector<std::string>{"serve", "--role", "shard", "--shard-id", std::to_string(id),
                                 "--shards", "3", "--port", "0"}));
    auto listeners = shards.back()->WaitForListeners(1);
    ASSERT_EQ(listeners.size(), 1u) << shards.back()->Stderr();
    shard_addresses.push_back(listeners["shard " + std::to_string(id)]);
    aggregator_args.push_back("--shard");
    aggregator_args.push_back("http://" + shard_addresses.back());
  }
  ServerProcess aggregator(aggregator_args);
  auto listeners = aggregator.WaitForListeners(1);
  ASSERT_EQ(listeners.size(), 1u) << aggregator.Stderr();
  KeyedClient http(listeners["aggregator"]);
  auto total = [&] { return TotalOf(http); };

  ExpectFirstAnswerOnRetry(http, total);
  KeyedClient shard2(shard_addresses[2]);
  EXPECT_EQ(CountOf(shard2), "7");  // the keyed 5 once, and the unkeyed 2
  ASSERT_EQ(http.Increment(R"({"value":5})", R"("k")").status, 200);
  Reply reused = http.Increment(R"({"value":8})", R"("k")");
  EXPECT_EQ(reused.status, 422) << reused.body;
  EXPECT_NE(reused.body.find(shard_addresses[2]), std::string::npos) << reused.body;
  EXPECT_EQ(http.Increment(R"({"value":5})", R"("a" )"
                                             R"("b")")
                .status,
            400);
  EXPECT_EQ(total(), "12");
}

// --- Keys survive kill -9 ----------------------------------------------------------

TEST(IdempotencyPersistenceTest, RetryAfterKill9AndRestartGetsTheFirstAnswerAndCountsNothing) {
  TempDir data;
  for (const char* mode : {"always", "everysec", "no"}) {
    SCOPED_TRACE(mode);
    const std::vector<std::string> args = {"serve", "--port",     "0",         "--shard-base-port",
                                           "0",     "--data-dir", data.path(), "--fsync",
                                           mode};
    const std::string key = std::string("\"before-the-crash-") + mode + "\"";
    std::string first, total_before;
    {
      ServerProcess serve(args);
      auto listeners = serve.WaitForListeners(4);
      ASSERT_EQ(listeners.size(), 4u) << serve.Stderr();
      KeyedClient http(listeners["aggregator"]);
      Reply reply = http.Increment(R"({"value":4,"counter":"orders"})", key);
      ASSERT_EQ(reply.status, 200) << reply.body;
      first = reply.body;
      ASSERT_EQ(http.Increment(R"({"value":4,"counter":"orders"})", R"("")").status, 400);
      total_before = http.Get("/total?counter=orders");
      serve.Signal(SIGKILL);  // the answer was sent; as if it had been lost on the way
      ASSERT_TRUE(serve.WaitForExit(5s).has_value());
    }
    ServerProcess serve(args);
    auto listeners = serve.WaitForListeners(4);
    ASSERT_EQ(listeners.size(), 4u) << serve.Stderr();
    KeyedClient http(listeners["aggregator"]);
    Reply retry = http.Increment(R"({"value":4,"counter":"orders"})", key);
    EXPECT_EQ(retry.status, 200) << retry.body;
    EXPECT_EQ(retry.body, first);
    EXPECT_EQ(http.Get("/total?counter=orders"), total_before);
    Reply reused = http.Increment(R"({"value":7,"counter":"orders"})", key);
    EXPECT_EQ(reused.status, 422) << reused.body;
    serve.Signal(SIGTERM);
    ASSERT_EQ(serve.WaitForExit(5s), 0) << serve.Stderr();
  }
}

// --- shardctl inc: a key per increment, retries with the same key ----------------

TEST_F(IdempotencyTest, IncSendsAFreshKeyWithEveryIncrement) {
  EXPECT_EQ(cluster_.Run({"inc", "5"}).out, "shard 2: count 5\n");
  EXPECT_EQ(cluster_.Run({"inc", "5"}).out, "shard 2: count 10\n");
  EXPECT_EQ(TotalOf(http_), "10");
}

TEST_F(IdempotencyTest, IncWithAnExplicitKeyCountsOnceAndRefusesItsReuse) {
  RunResult first = cluster_.Run({"inc", "5", "--idempotency-key", "order 1234 paid"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, "shard 2: count 5\n");
  ASSERT_EQ(cluster_.Run({"inc", "2"}).exit_code, 0);
  RunResult again = cluster_.Run({"inc", "5", "--idempotency-key", "order 1234 paid"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "shard 2: count 5\n");  // the first answer
  EXPECT_EQ(again.err, "");
  // The key as a header carries it the same way: quoted, spaces and all.
  EXPECT_EQ(http_.Increment(R"({"value":5})", R"("order 1234 paid")").body,
            R"({"success":true,"shardId":2,"count":5})");

  RunResult reused = cluster_.Run({"inc", "8", "--idempotency-key", "order 1234 paid"});
  EXPECT_EQ(reused.exit_code, 1);
  EXPECT_NE(reused.err.find("(422)"), std::string::npos) << reused.err;
  EXPECT_EQ(reused.err.find("retrying"), std::string::npos) << reused.err;
  EXPECT_EQ(TotalOf(http_), "7");
}

TEST(IdempotencyCliTest, BadKeysAndRetriesAreUsageErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"inc", "1", "--idempotency-key", ""},
           {"inc", "1", "--idempotency-key", std::string(256, 'k')},
           {"inc", "1", "--idempotency-key", "tab\there"},
           {"inc", "1", "--retries", "-1"},
           {"inc", "1", "--retries", "010"},
           {"inc", "1", "--retries", "101"},
       }) {
    RunResult result = RunShardctl(args);
    EXPECT_EQ(result.exit_code, 2) << args[2] << " " << args[3] << "\n" << result.err;
    EXPECT_TRUE(result.err.starts_with("shardctl: error: ")) << result.err;
  }
}

// Reads one HTTP message (headers, then a Content-Length body) from `fd`.
std::string ReadHttpMessage(int fd) {
  std::string data;
  size_t needed = std::string::npos;
  auto deadline = Clock::now() + 10s;
  while (data.size() < needed && Clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 1000) <= 0) continue;
    char buffer[4096];
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    data.append(buffer, static_cast<size_t>(n));
    size_t end = data.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    std::string headers = data.substr(0, end);
    std::transform(headers.begin(), headers.end(), headers.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    size_t at = headers.find("content-length:");
    needed = end + 4 + (at == std::string::npos ? 0 : std::stoul(headers.substr(at + 15)));
  }
  return data;
}

TEST_F(IdempotencyTest, IncRetriesWithTheSameKeyWhenTheFirstAnswerIsLostAndCountsOnce) {
  // A proxy that delivers the first request to the aggregator, which applies
  // it, and then drops the connection instead of passing the answer on.
  HeldPort proxy;
  std::vector<std::string> requests;
  std::thread relay([&] {
    for (int connection = 0; connection < 2; ++connection) {
      int client = proxy.Accept(20s);
      if (client < 0) return;
      std::string request = ReadHttpMessage(client);
      requests.push_back(request);
      int server = ConnectTo(cluster_.aggregator());
      ::send(server, request.data(), request.size(), MSG_NOSIGNAL);
      std::string answer = ReadHttpMessage(server);
      ::close(server);
      if (connection > 0) ::send(client, answer.data(), answer.size(), MSG_NOSIGNAL);
      ::close(client);
    }
  });
  RunResult result = RunShardctl({"inc", "5", "--url", proxy.url(), "--timeout", "5"});
  relay.join();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "shard 2: count 5\n");
  EXPECT_NE(result.err.find("retrying"), std::string::npos) << result.err;
  ASSERT_EQ(requests.size(), 2u);
  auto key_of = [](const std::string& request) {
    size_t at = request.find("Idempotency-Key: ");
    return at == std::string::npos ? "" : request.substr(at, request.find("\r\n", at) - at);
  };
  EXPECT_EQ(key_of(requests[0]).size(), std::string("Idempotency-Key: \"\"").size() + 32)
      << requests[0];
  EXPECT_EQ(key_of(requests[0]), key_of(requests[1]));
  EXPECT_EQ(TotalOf(http_), "5");
}

TEST(IdempotencyCliTest, IncRetriesUntilALateServerStartsAndCountsOnce) {
  // The aggregator's port is held by the test: the first attempt connects
  // and is dropped unanswered, the next ones are refused until serve starts.
  auto listener = std::make_unique<HeldPort>();
  const int port = listener->port();
  auto inc = std::async(std::launch::async, [url = listener->url()] {
    return RunShardctl({"inc", "5", "--url", url, "--retries", "10", "--timeout", "5"});
  });
  int first = listener->Accept(20s);
  ASSERT_GE(first, 0) << "inc never tried to connect";
  ::close(first);
  listener.reset();

  ServerProcess serve({"serve", "--port", std::to_string(port), "--shard-base-port", "0"});
  ASSERT_EQ(serve.WaitForListeners(4).size(), 4u) << serve.Stderr();
  RunResult result = inc.get();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "shard 2: count 5\n");
  EXPECT_NE(result.err.find("retrying"), std::string::npos) << result.err;
  KeyedClient http("127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(TotalOf(http), "5");
}

TEST(IdempotencyCliTest, IncGivesUpAfterItsRetries) {
  int port = 0;
  {
    HeldPort free_port;  // released at once: nothing listens there afterwards
    port = free_port.port();
  }
  RunResult result = RunShardctl(
      {"inc", "5", "--url", "http://127.0.0.1:" + std::to_string(port), "--retries", "2"});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(result.err.find("retrying in"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("(2 of 2)"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("shardctl: error: cannot connect"), std::string::npos) << result.err;
  RunResult no_retries = RunShardctl(
      {"inc", "5", "--url", "http://127.0.0.1:" + std::to_string(port), "--retries", "0"});
  EXPECT_EQ(no_retries.exit_code, 3);
  EXPECT_EQ(no_retries.err.find("retrying"), std::string::npos) << no_retries.err;
}

}  // namespace
}  // namespace shardctl::testing
