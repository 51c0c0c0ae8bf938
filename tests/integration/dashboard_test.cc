// The dashboard at GET /, checked in a real browser: headless Chromium loads
// it from a running serve and the test reads the DOM the page built (and
// keeps a screenshot in <build>/test-artifacts/). Also a page from another
// origin that calls the API through CORS (serve --cors-origin), and the rate
// of requests an open dashboard costs.
//
// How: `chromium --headless=new --dump-dom --virtual-time-budget=MS`
// (tests/integration/browser.h). Virtual time lets the page's 2 s poll loop
// run several rounds in well under a second of real time, and the browser
// only dumps the DOM once the budget is spent, with no request left under
// way: no sleep, no guess at when the page is done.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/integration/browser.h"
#include "tests/integration/harness.h"

namespace shardctl::testing {
namespace {

using Json = nlohmann::json;

std::string ArtifactsDir() {
  std::string dir = SHARDCTL_TEST_ARTIFACTS_DIR;
  std::filesystem::create_directories(dir);
  return dir;
}

Json GetJson(const std::string& address, const std::string& path) {
  HttpConnection connection(address);
  Reply reply = connection.Get(path);
  EXPECT_EQ(reply.status, 200) << path << ": " << reply.body;
  return Json::parse(reply.body, nullptr, false);
}

// The raw answer (status line, headers, body) to one request without a token.
std::string RawGet(const std::string& address, const std::string& path) {
  return SendRaw(address, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}

// Increments counters in the background, in rounds, until destroyed. One
// round: dash-a +3, dash-b +2, dash-c +1 and the default counter +1, +2, +3
// (one value to each of three shards). Each counter lives on one shard
// (value mod 3), so any answer sees default >= 6r, dash-a <= 3(r+1), ...:
// from round 2 on, the totals rank default, dash-a, dash-b, dash-c.
class Load {
 public:
  explicit Load(std::string address) : address_(std::move(address)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Load() { Stop(); }

  // Waits until `rounds` rounds are done; false if a request failed or 10 s passed.
  bool WaitForRounds(int rounds) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return failed_ || rounds_ >= rounds; }) && !failed_;
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool failed() {
    std::lock_guard lock(mutex_);
    return failed_;
  }

 private:
  void Run() {
    HttpConnection connection(address_);
    const std::vector<std::string> round = {
        R"({"value":3,"counter":"dash-a"})", R"({"value":2,"counter":"dash-b"})",
        R"({"value":1,"counter":"dash-c"})", R"({"value":1})", R"({"value":2})",
        R"({"value":3})"};
    while (!stop_) {
      for (const std::string& body : round) {
        if (connection.Post("/increment", body).status != 200) {
          std::lock_guard lock(mutex_);
          failed_ = true;
          changed_.notify_all();
          return;
        }
      }
      std::lock_guard lock(mutex_);
      ++rounds_;
      changed_.notify_all();
    }
  }

  std::string address_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  int rounds_ = 0;
  bool failed_ = false;
  std::thread thread_;
};

PageResult LoadDashboard(const Cluster& cluster, std::chrono::milliseconds virtual_time,
                         const std::string& screenshot_path = "") {
  PageResult page = LoadPage(cluster.url() + "/", virtual_time, screenshot_path);
  EXPECT_TRUE(page.finished) << "chromium did not finish; stderr:\n" << page.err;
  EXPECT_EQ(page.exit_code, 0) << page.err;
  return page;
}

// Attribute `name` of the element with id `id`; "(no #id)" if there is none.
std::string AttrOf(const std::string& dom, const std::string& id, const std::string& name) {
  auto element = ElementById(dom, id);
  return element ? element->Attr(name) : "(no #" + id + ")";
}

// The text of the element with id `id`; "(no #id)" if there is none.
std::string TextOf(const std::string& dom, const std::string& id) {
  auto element = ElementById(dom, id);
  return element ? element->text : "(no #" + id + ")";
}

std::string StatusOf(const std::string& dom) { return AttrOf(dom, "status", "data-state"); }

TEST(DashboardTest, GetSlashAnswersTheEmbeddedPage) {
  Cluster cluster({"--in-memory"});
  ASSERT_TRUE(cluster.ready());
  std::string answer = RawGet(cluster.aggregator(), "/");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer.substr(0, 300);
  EXPECT_NE(answer.find("Content-Type: text/html; charset=utf-8\r\n"), std::string::npos)
      << answer.substr(0, 300);
  std::string page = answer.substr(answer.find("\r\n\r\n") + 4);
  std::ifstream file(std::string(SHARDCTL_SOURCE_DIR) + "/net/dashboard.html", std::ios::binary);
  std::string source((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  EXPECT_EQ(page, source) << "the binary serves another page than net/dashboard.html";
  // Nothing remote: the page works on a machine with no network.
  for (const char* remote :
       {"src=\"http", "src=\"//", "href=\"http", "href=\"//", "url(", "@import"}) {
    EXPECT_EQ(page.find(remote), std::string::npos) << remote;
  }
  // Only the exact path: the API's 404 for anything else.
  EXPECT_TRUE(RawGet(cluster.aggregator(), "/index.html").starts_with("HTTP/1.1 404"));
}

// The page while increments run: what it shows lies between the totals read
// before and after; once the load stops, it shows exactly what the API says.
TEST(DashboardTest, ShowsTotalsLeaderboardAndShardsWhileIncrementsRun) {
  Cluster cluster({"--in-memory"});
  ASSERT_TRUE(cluster.ready());
  auto load = std::make_unique<Load>(cluster.aggregator());
  ASSERT_TRUE(load->WaitForRounds(3));
  const int64_t before = GetJson(cluster.aggregator(), "/total")["total"].get<int64_t>();

  PageResult live = LoadDashboard(cluster, 4000ms);
  const int64_t after = GetJson(cluster.aggregator(), "/total")["total"].get<int64_t>();
  ASSERT_FALSE(load->failed());
  load.reset();

  EXPECT_EQ(StatusOf(live.dom), "ok") << live.dom;
  auto total = ElementById(live.dom, "total");
  ASSERT_TRUE(total.has_value()) << live.dom;
  const int64_t shown = std::stoll(total->Attr("data-value"));
  EXPECT_GE(shown, before);
  EXPECT_LE(shown, after);
  EXPECT_EQ(total->Attr("data-partial"), "false");
  // Two rounds or more, so a rate from the change between them; the load
  // only adds, so it is not negative. (Not "above zero": the page's 2 s
  // run in virtual time, and under a sanitizer on a loaded machine two
  // rounds can come before the load adds anything: seen once in CI.)
  auto rate = ElementById(live.dom, "rate");
  ASSERT_TRUE(rate.has_value());
  ASSERT_FALSE(rate->Attr("data-value").empty()) << live.dom;
  EXPECT_GE(std::stod(rate->Attr("data-value")), 0.0);
  auto chart = ElementById(live.dom, "chart");
  ASSERT_TRUE(chart.has_value());
  EXPECT_GE(std::stoi(chart->Attr("data-points")), 1);

  std::vector<Element> leaders = TableRows(live.dom, "leaderboard");
  ASSERT_EQ(leaders.size(), 4u) << live.dom;
  const std::vector<std::string> order = {"default", "dash-a", "dash-b", "dash-c"};
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(leaders[i].Attr("data-counter"), order[i]);
    EXPECT_GT(std::stoll(leaders[i].Attr("data-total")), 0);
  }
  std::vector<Element> shards = TableRows(live.dom, "shards");
  ASSERT_EQ(shards.size(), 3u) << live.dom;
  int64_t shard_sum = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    EXPECT_EQ(shards[i].Attr("data-shard"), std::to_string(i));
    EXPECT_EQ(shards[i].Attr("data-state"), "up");
    ASSERT_FALSE(shards[i].Attr("data-count").empty());
    shard_sum += std::stoll(shards[i].Attr("data-count"));
  }
  EXPECT_GE(shard_sum, before);
  EXPECT_LE(shard_sum, after);

  // Stopped: the page must show exactly what the API answers.
  const Json api_total = GetJson(cluster.aggregator(), "/total");
  const Json api_counters = GetJson(cluster.aggregator(), "/counters?top=10");
  const Json api_shards = GetJson(cluster.aggregator(), "/shards");
  const std::string screenshot = ArtifactsDir() + "/dashboard.png";
  std::filesystem::remove(screenshot);
  PageResult still =
      LoadDashboard(cluster, 4000ms, screenshot);
  EXPECT_EQ(StatusOf(still.dom), "ok");
  EXPECT_EQ(AttrOf(still.dom, "total", "data-value"),
            std::to_string(api_total["total"].get<int64_t>()));
  EXPECT_EQ(AttrOf(still.dom, "rate", "data-value"), "0");
  leaders = TableRows(still.dom, "leaderboard");
  ASSERT_EQ(leaders.size(), api_counters["counters"].size());
  for (size_t i = 0; i < leaders.size(); ++i) {
    const Json& expected = api_counters["counters"][i];
    EXPECT_EQ(leaders[i].Attr("data-counter"), expected["counter"].get<std::string>());
    EXPECT_EQ(leaders[i].Attr("data-total"), std::to_string(expected["total"].get<int64_t>()));
    EXPECT_EQ(leaders[i].Attr("data-rate"), "0");
  }
  shards = TableRows(still.dom, "shards");
  ASSERT_EQ(shards.size(), api_shards["shards"].size());
  for (size_t i = 0; i < shards.size(); ++i) {
    const Json& expected = api_shards["shards"][i];
    EXPECT_EQ(shards[i].Attr("data-state"), "up");
    EXPECT_EQ(shards[i].Attr("data-count"), std::to_string(expected["count"].get<int64_t>()));
  }

  // The screenshot, kept as an artifact: a PNG of the window, with content
  // (a blank 1200x900 page compresses to a few kilobytes).
  auto size = PngSize(screenshot);
  ASSERT_TRUE(size.has_value()) << screenshot;
  EXPECT_EQ(*size, std::make_pair(kWindowWidth, kWindowHeight));
  EXPECT_GT(std::filesystem::file_size(screenshot), 20000u);
}

// Counts beyond 2^53 (where a JavaScript number loses digits) are shown
// exactly: a wrong total is worse than none.
TEST(DashboardTest, ShowsInt64CountsExactly) {
  Cluster cluster({"--in-memory"});
  ASSERT_TRUE(cluster.ready());
  HttpConnection connection(cluster.aggregator());
  for (const char* body : {R"({"value":9223372036854775807})",
                           R"({"value":9223372036854775807,"counter":"big"})",
                           R"({"value":-9223372036854775808,"counter":"low"})"}) {
    ASSERT_EQ(connection.Post("/increment", body).status, 200) << body;
  }
  PageResult page = LoadDashboard(cluster, 3000ms);
  auto digits = [](const std::string& text) {
    std::string kept;
    for (char c : text) {
      if ((c >= '0' && c <= '9') || c == '-') kept += c;
    }
    return kept;
  };
  auto total = ElementById(page.dom, "total");
  ASSERT_TRUE(total.has_value()) << page.dom;
  EXPECT_EQ(total->Attr("data-value"), "9223372036854775807");
  EXPECT_EQ(digits(total->text), "9223372036854775807") << total->text;
  std::vector<Element> leaders = TableRows(page.dom, "leaderboard");
  ASSERT_EQ(leaders.size(), 3u) << page.dom;
  EXPECT_EQ(leaders[0].Attr("data-counter"), "big");
  EXPECT_EQ(leaders[0].Attr("data-total"), "9223372036854775807");
  EXPECT_EQ(leaders[1].Attr("data-counter"), "default");
  EXPECT_EQ(leaders[2].Attr("data-counter"), "low");
  EXPECT_EQ(leaders[2].Attr("data-total"), "-9223372036854775808");
  std::vector<Element> shards = TableRows(page.dom, "shards");
  ASSERT_EQ(shards.size(), 3u);
  EXPECT_EQ(shards[1].Attr("data-count"), "9223372036854775807");  // INT64_MAX mod 3 == 1
}

// A shard that cannot be reached: its row says down with its error, the
// total is the other shards' sum, marked partial, and the leaderboard (which
// needs every shard) says why it is missing.
TEST(DashboardTest, ShowsAShardThatIsDown) {
  std::vector<std::unique_ptr<ServerProcess>> shards;
  std::vector<std::string> args = {"serve", "--role", "aggregator", "--port", "0",
                                   "--shard-timeout", "1"};
  for (int id = 0; id < 2; ++id) {
    shards.push_back(std::make_unique<ServerProcess>(std::vector<std::string>{
        "serve", "--role", "shard", "--shard-id", std::to_string(id), "--shards", "3", "--port",
        "0", "--in-memory"}));
    auto listeners = shards.back()->WaitForListeners(1);
    ASSERT_EQ(listeners.size(), 1u) << shards.back()->Stderr();
    args.push_back("--shard");
    args.push_back("http://" + listeners["shard " + std::to_string(id)]);
  }
  std::string closed_port;
  {
    HeldPort port;  // free now, refused once released
    closed_port = port.url();
  }
  args.push_back("--shard");
  args.push_back(closed_port);
  ServerProcess aggregator(args);
  auto listeners = aggregator.WaitForListeners(1);
  ASSERT_EQ(listeners.size(), 1u) << aggregator.Stderr();
  const std::string address = listeners["aggregator"];
  HttpConnection connection(address);
  ASSERT_EQ(connection.Post("/increment", R"({"value":3})").status, 200);  // shard 0
  ASSERT_EQ(connection.Post("/increment", R"({"value":4})").status, 200);  // shard 1

  PageResult page = LoadPage("http://" + address + "/", 4000ms);
  ASSERT_TRUE(page.finished) << page.err;
  EXPECT_EQ(StatusOf(page.dom), "ok") << page.dom;
  auto total = ElementById(page.dom, "total");
  ASSERT_TRUE(total.has_value());
  EXPECT_EQ(total->Attr("data-value"), "7");
  EXPECT_EQ(total->Attr("data-partial"), "true");
  EXPECT_NE(TextOf(page.dom, "total-note").find("shard 2"), std::string::npos)
      << page.dom;
  // No rate from partial sums: a shard going down would read as a drop.
  EXPECT_EQ(AttrOf(page.dom, "rate", "data-value"), "");

  std::vector<Element> rows = TableRows(page.dom, "shards");
  ASSERT_EQ(rows.size(), 3u) << page.dom;
  EXPECT_EQ(rows[0].Attr("data-state"), "up");
  EXPECT_EQ(rows[0].Attr("data-count"), "3");
  EXPECT_EQ(rows[1].Attr("data-state"), "up");
  EXPECT_EQ(rows[1].Attr("data-count"), "4");
  EXPECT_EQ(rows[2].Attr("data-state"), "down");
  EXPECT_EQ(rows[2].Attr("data-count"), "");
  EXPECT_NE(page.dom.find(closed_port), std::string::npos);
  auto error = ElementById(page.dom, "leaderboard-error");
  ASSERT_TRUE(error.has_value());
  EXPECT_FALSE(error->Has("hidden")) << page.dom;
  EXPECT_NE(error->text.find("503"), std::string::npos) << error->text;
}

// A server that answers scripted requests on a port of 127.0.0.1: for each
// request (on its own connection), `answer` gives the whole response, or
// nullopt to close the connection without one, as a server that went away.
class ScriptedServer {
 public:
  using Answer = std::function<std::optional<std::string>(const std::string& request_line)>;
  explicit ScriptedServer(Answer answer) : answer_(std::move(answer)) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
  }
  std::string url() const { return port_.url(); }

  static std::string Ok(const std::string& content_type, const std::string& body) {
    return "HTTP/1.1 200 OK\r\nContent-Type: " + content_type + "\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  }

 private:
  void Serve() {
    while (!stop_) {
      int fd = port_.Accept(100ms);
      if (fd < 0) continue;
      std::string request;
      char buffer[4096];
      pollfd pfd{fd, POLLIN, 0};
      while (request.find("\r\n\r\n") == std::string::npos && ::poll(&pfd, 1, 2000) > 0) {
        ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        request.append(buffer, static_cast<size_t>(n));
      }
      if (std::optional<std::string> response = answer_(request.substr(0, request.find("\r\n")))) {
        ::send(fd, response->data(), response->size(), MSG_NOSIGNAL);
      }
      ::close(fd);
    }
  }

  HeldPort port_;
  Answer answer_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The dashboard as shardctl serves it, from a server that answers one round
// of requests and then closes every connection unanswered: the page keeps
// the last figures, greyed out, and says how old they are.
TEST(DashboardTest, SaysWhenTheServerStopsAnswering) {
  Cluster cluster({"--in-memory"});
  ASSERT_TRUE(cluster.ready());
  std::string answer = RawGet(cluster.aggregator(), "/");
  ASSERT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer.substr(0, 200);
  const std::string page = answer.substr(answer.find("\r\n\r\n") + 4);

  std::atomic<int> data_requests{0};
  ScriptedServer server([&](const std::string& line) -> std::optional<std::string> {
    if (line.starts_with("GET / ")) return ScriptedServer::Ok("text/html; charset=utf-8", page);
    const bool total = line.starts_with("GET /total?");
    const bool list = line.starts_with("GET /counters?");
    if (!total && !list && !line.starts_with("GET /shards ")) return std::nullopt;
    if (++data_requests > 3) return std::nullopt;
    const std::string json = "application/json";
    if (total) return ScriptedServer::Ok(json, R"({"total":42})");
    if (list) return ScriptedServer::Ok(json, R"({"counters":[{"counter":"default","total":42}]})");
    return ScriptedServer::Ok(
        json, R"({"routing":"value","shards":[{"address":"http://127.0.0.1:1","count":42,)"
              R"("lastError":null,"shardId":0,"since":1700000000,"state":"up"}]})");
  });
  PageResult result = LoadPage(server.url() + "/", 10000ms);
  ASSERT_TRUE(result.finished) << result.err;
  EXPECT_GT(data_requests.load(), 3);  // it kept trying
  auto status = ElementById(result.dom, "status");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->Attr("data-state"), "stale") << result.dom;
  EXPECT_NE(status->text.find("cannot reach the server"), std::string::npos) << status->text;
  EXPECT_NE(status->text.find("Last update"), std::string::npos) << status->text;
  EXPECT_EQ(AttrOf(result.dom, "total", "data-value"), "42");
  EXPECT_EQ(AttrOf(result.dom, "rate", "data-value"), "");
  EXPECT_NE(result.dom.find("<main data-stale=\"true\">"), std::string::npos);
  ASSERT_EQ(TableRows(result.dom, "leaderboard").size(), 1u);
}

// GET / is open, so the page can load and ask for the token; the data it
// needs is not.
TEST(DashboardTest, AsksForTheTokenWhenTheServerHasOne) {
  TempDir dir;
  const std::string token_file = dir.path() + "/token";
  std::ofstream(token_file) << "dashboard-token-1\n";
  Cluster cluster({"--in-memory", "--token-file", token_file});
  ASSERT_TRUE(cluster.ready());
  EXPECT_TRUE(RawGet(cluster.aggregator(), "/").starts_with("HTTP/1.1 200"));
  for (const char* path : {"/total", "/counters?top=10", "/shards"}) {
    EXPECT_TRUE(RawGet(cluster.aggregator(), path).starts_with("HTTP/1.1 401")) << path;
  }

  PageResult page = LoadDashboard(cluster, 3000ms);
  EXPECT_EQ(StatusOf(page.dom), "auth") << page.dom;
  auto prompt = ElementById(page.dom, "auth");
  ASSERT_TRUE(prompt.has_value());
  EXPECT_FALSE(prompt->Has("hidden")) << page.dom;
  auto input = ElementById(page.dom, "token");
  ASSERT_TRUE(input.has_value());
  EXPECT_EQ(input->Attr("type"), "password");
  EXPECT_TRUE(AttrOf(page.dom, "total", "data-value").empty());
  EXPECT_TRUE(TableRows(page.dom, "leaderboard").empty());
}

// The prompt in use, driven over the DevTools protocol in real time: a wrong
// token is refused and asked again, the right one shows the counters and is
// kept for the tab (a reload needs no prompt), and "Forget token" drops it.
TEST(DashboardTest, TakesTheTokenTypedIntoThePrompt) {
  TempDir dir;
  const std::string token = "dashboard-token-2";
  const std::string token_file = dir.path() + "/token";
  std::ofstream(token_file) << token << "\n";
  Cluster cluster({"--in-memory", "--token-file", token_file});
  ASSERT_TRUE(cluster.ready());
  std::string increment = SendRaw(
      cluster.aggregator(),
      "POST /increment HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " +
          token + "\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"value\":5}");
  ASSERT_TRUE(increment.starts_with("HTTP/1.1 200")) << increment;

  BrowserSession browser(cluster.url() + "/");
  ASSERT_TRUE(browser.ok());
  const std::string state = "document.getElementById('status').dataset.state";
  auto type_token = [&](const std::string& typed) {
    return browser.Evaluate("document.getElementById('token').value = '" + typed +
                            "'; document.getElementById('token-form').requestSubmit(); true");
  };
  ASSERT_TRUE(browser.WaitFor(state + " === 'auth'"));

  ASSERT_EQ(type_token("not-the-token"), "true");
  EXPECT_TRUE(browser.WaitFor(
      "document.getElementById('auth-message').textContent.includes('refused') && " + state +
      " === 'auth'"));
  EXPECT_EQ(browser.Evaluate("sessionStorage.getItem('shardctl.token')"), "null");

  ASSERT_EQ(type_token(token), "true");
  EXPECT_TRUE(browser.WaitFor(state + " === 'ok' && document.getElementById('total').dataset" +
                              ".value === '5' && document.getElementById('auth').hidden"));
  EXPECT_EQ(browser.Evaluate("sessionStorage.getItem('shardctl.token')"), "\"" + token + "\"");

  // A reload finds the token in the tab's sessionStorage.
  ASSERT_EQ(browser.Evaluate("window.beforeReload = true; setTimeout(() => location.reload()); true"),
            "true");
  EXPECT_TRUE(browser.WaitFor("window.beforeReload === undefined && " + state +
                              " === 'ok' && document.getElementById('auth').hidden"));

  ASSERT_EQ(browser.Evaluate("window.beforeReload = true; "
                             "document.getElementById('forget').click(); true"),
            "true");
  EXPECT_TRUE(browser.WaitFor("window.beforeReload === undefined && " + state + " === 'auth'"));
  EXPECT_EQ(browser.Evaluate("sessionStorage.getItem('shardctl.token')"), "null");
}

// An open dashboard polls three endpoints every 2 s: over 20 s of the page's
// time the server sees 3 requests a round, 11 rounds at most.
TEST(DashboardTest, AnOpenPageCostsAtMostTwoRequestsASecond) {
  Cluster cluster({"--in-memory", "--access-log"});
  ASSERT_TRUE(cluster.ready());
  PageResult page = LoadDashboard(cluster, 20000ms);
  EXPECT_EQ(StatusOf(page.dom), "ok");
  cluster.process().Signal(SIGTERM);
  ASSERT_EQ(cluster.process().WaitForExit(10s), 0);
  const std::string log = cluster.process().Stderr();
  auto count = [&](const std::string& request) {
    int n = 0;
    for (size_t at = log.find(request); at != std::string::npos; at = log.find(request, at + 1)) ++n;
    return n;
  };
  const int totals = count("\"GET /total\" 200");
  const int lists = count("\"GET /counters\" 200");
  const int shards = count("\"GET /shards\" 200");
  EXPECT_EQ(count("\"GET /\" 200"), 1) << log;
  EXPECT_GE(totals, 5) << log;  // it does poll
  EXPECT_LE(totals, 11) << log;
  EXPECT_EQ(lists, totals);
  EXPECT_EQ(shards, totals);
  EXPECT_LE(totals + lists + shards, 33) << "more than 1.5 requests a second of page time";
}

// A hidden tab costs nothing: the page stops polling when its
// visibilityState turns hidden and starts again once visible. (Headless
// Chromium's tab never hides, so the test sets what the page reads and
// sends it the event a browser would.)
TEST(DashboardTest, AHiddenTabStopsPolling) {
  Cluster cluster({"--in-memory", "--access-log"});
  ASSERT_TRUE(cluster.ready());
  auto data_requests = [&] {
    const std::string log = cluster.process().Stderr();
    int n = 0;
    for (const char* request : {"\"GET /total\"", "\"GET /counters\"", "\"GET /shards\""}) {
      for (size_t at = log.find(request); at != std::string::npos; at = log.find(request, at + 1))
        ++n;
    }
    return n;
  };
  BrowserSession browser(cluster.url() + "/");
  ASSERT_TRUE(browser.ok());
  const std::string state = "document.getElementById('status').dataset.state";
  ASSERT_TRUE(browser.WaitFor(state + " === 'ok'"));

  int before = data_requests();
  ASSERT_TRUE(browser.RunVirtualTime(10000ms));
  const int visible = data_requests() - before;
  EXPECT_GE(visible, 12) << "10 s of a visible page: 5 rounds of 3";
  EXPECT_LE(visible, 18);

  ASSERT_TRUE(browser.Evaluate(
      "Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => "
      "'hidden'}); document.dispatchEvent(new Event('visibilitychange')); true"));
  ASSERT_TRUE(browser.WaitFor(state + " === 'paused'"));
  before = data_requests();
  ASSERT_TRUE(browser.RunVirtualTime(10000ms));
  EXPECT_LE(data_requests() - before, 3) << "at most the round under way when it hid";

  before = data_requests();
  ASSERT_TRUE(browser.Evaluate(
      "delete document.visibilityState; document.dispatchEvent(new Event('visibilitychange')); "
      "true"));
  EXPECT_TRUE(browser.WaitFor(state + " === 'ok'"));
  ASSERT_TRUE(browser.RunVirtualTime(4000ms));
  EXPECT_GE(data_requests() - before, 6) << "polling again once visible";
}

// A static page on another origin (the test's own server, on another port
// of 127.0.0.1) that increments a counter through the API of the shardctl
// at ?api=URL, then reads its total, and writes what happened into the DOM.
class OtherOriginServer {
 public:
  OtherOriginServer() {
    server_.Get("/cors.html", [](const httplib::Request&, httplib::Response& response) {
      response.set_content(kPage, "text/html; charset=utf-8");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) {
      ADD_FAILURE() << "cannot bind a port for the other origin";
      return;
    }
    // Bound and listening already: a browser's connection waits in the
    // backlog until the thread accepts it.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~OtherOriginServer() {
    if (!thread_.joinable()) return;
    // stop() does nothing to a server whose loop has not started yet.
    while (!server_.is_running()) std::this_thread::yield();
    server_.stop();
    thread_.join();
  }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  static constexpr char kPage[] = R"(<!DOCTYPE html>
<html><body><p id="outcome" data-post="pending" data-total="pending">running</p>
<script>
const api = new URLSearchParams(location.search).get('api');
async function run() {
  const out = document.getElementById('outcome');
  try {
    const reply = await fetch(api + '/increment', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: '{"value":1,"counter":"cors"}'});
    out.dataset.post = reply.ok ? 'ok' : 'status ' + reply.status;
    out.dataset.postBody = await reply.text();
  } catch (e) {
    out.dataset.post = e.name;
  }
  try {
    const reply = await fetch(api + '/total?counter=cors');
    out.dataset.total = String((await reply.json()).total);
  } catch (e) {
    out.dataset.total = e.name;
  }
  out.textContent = 'done';
}
run();
</script></body></html>
)";

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// What the other origin's page saw, and what the server counted and logged.
struct CorsRun {
  std::optional<Element> outcome;
  int64_t counted = -1;
  std::string log;
};

// Serves with --cors-origin `listed_origin`, and loads the page of `pages`.
CorsRun LoadOtherOriginPage(const OtherOriginServer& pages, const std::string& listed_origin) {
  CorsRun run;
  Cluster cluster({"--in-memory", "--access-log", "--cors-origin", listed_origin});
  EXPECT_TRUE(cluster.ready());
  if (!cluster.ready()) return run;
  PageResult page =
      LoadPage(pages.origin() + "/cors.html?api=" + cluster.url(), 2000ms);
  EXPECT_TRUE(page.finished) << page.err;
  EXPECT_EQ(page.exit_code, 0) << page.err;
  run.outcome = ElementById(page.dom, "outcome");
  EXPECT_TRUE(run.outcome.has_value()) << page.dom;
  if (run.outcome) {
    EXPECT_EQ(run.outcome->text, "done") << page.dom;
  }
  run.counted = GetJson(cluster.aggregator(), "/total?counter=cors")["total"].get<int64_t>();
  cluster.process().Signal(SIGTERM);
  EXPECT_EQ(cluster.process().WaitForExit(10s), 0);
  run.log = cluster.process().Stderr();
  return run;
}

TEST(DashboardCorsTest, AListedOriginIncrementsAndReadsTheTotal) {
  OtherOriginServer pages;
  CorsRun run = LoadOtherOriginPage(pages, pages.origin());
  ASSERT_TRUE(run.outcome.has_value());
  EXPECT_EQ(run.outcome->Attr("data-post"), "ok");
  EXPECT_NE(run.outcome->Attr("data-post-body").find(R"("success":true)"), std::string::npos)
      << run.outcome->Attr("data-post-body");
  EXPECT_EQ(run.outcome->Attr("data-total"), "1");
  EXPECT_EQ(run.counted, 1);
  // The JSON POST was preflighted, then sent.
  EXPECT_NE(run.log.find("\"OPTIONS /increment\" 204"), std::string::npos) << run.log;
  EXPECT_NE(run.log.find("\"POST /increment\" 200"), std::string::npos) << run.log;
}

TEST(DashboardCorsTest, AnotherOriginIsBlockedAndCountsNothing) {
  OtherOriginServer pages;
  HeldPort elsewhere;  // the origin serve lists: not the page's
  CorsRun run = LoadOtherOriginPage(pages, elsewhere.url());
  ASSERT_TRUE(run.outcome.has_value());
  // fetch() rejects with a TypeError when CORS blocks a request.
  EXPECT_EQ(run.outcome->Attr("data-post"), "TypeError");
  EXPECT_EQ(run.outcome->Attr("data-total"), "TypeError");
  // The preflight was refused, so the browser never sent the POST: nothing
  // counted. (The GET, a simple request, was answered, but without
  // Access-Control-Allow-Origin, so the page could not read it.)
  EXPECT_EQ(run.counted, 0);
  EXPECT_NE(run.log.find("\"OPTIONS /increment\" 403"), std::string::npos) << run.log;
  EXPECT_EQ(run.log.find("\"POST /increment\""), std::string::npos) << run.log;
}

}  // namespace
}  // namespace shardctl::testing
