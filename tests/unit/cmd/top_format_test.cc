#include "cmd/top_format.h"

#include <chrono>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace shardctl::cmd {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// 2027-01-15T08:00:00Z
const auto kWall = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

// A view with everything known: 3 shards, 2 counters, metrics.
TopView FullView() {
  TopView view;
  view.wall = kWall;
  view.seconds = 1.0004;
  view.total = 12345;
  view.total_per_second = 61230.04;
  view.has_metrics = true;
  view.increments_per_second = 2041;
  view.latency = LatencySummary{2041, 0.000213, 0.0013, 0.0025, 10};
  view.shards_up = 3;
  view.shards = {{0, true, 4000, 0.25, 20410, ""},
                 {1, true, 8000, 0.5, -3.5, ""},
                 {2, true, 4000, 0.25, 0, ""}};
  view.counters = std::vector<CounterView>{{"page:home", 5120, 170}, {"api:c42", 20, std::nullopt}};
  return view;
}

// A view with what is not known: no metrics, a shard down, the total and
// the counters failed.
TopView SparseView() {
  TopView view;
  view.wall = kWall;
  view.seconds = 1;
  view.total_error = "shard 1 cannot be reached";
  view.metrics_error = "the server has no GET /metrics";
  view.shards_up = 1;
  view.shards = {{0, true, 5, 1, 1, ""},
                 {1, false, std::nullopt, std::nullopt, std::nullopt, "connection refused"}};
  view.counters_error = "shard 1 cannot be reached";
  return view;
}

// --- The line ---------------------------------------------------------------

TEST(TopLineTest, HasEveryFieldInOrder) {
  EXPECT_EQ(FormatTopLine(FullView()),
            "time=2027-01-15T08:00:00Z seconds=1.000 total=12345 total/s=61230.0 inc/s=2041.0 "
            "p50_ms=0.213 p99_ms=1.300 max_ms=2.500 shards_up=3 shards=3 "
            "top=page:home:170.0,api:c42:-");
}

TEST(TopLineTest, SaysDashForWhatIsNotKnown) {
  EXPECT_EQ(FormatTopLine(SparseView()),
            "time=2027-01-15T08:00:00Z seconds=1.000 total=- total/s=- inc/s=- p50_ms=- "
            "p99_ms=- max_ms=- shards_up=1 shards=2 top=-");
}

TEST(TopLineTest, NoCountersIsAnEmptyTopAndASlowMaxIsInf) {
  TopView view = FullView();
  view.counters = std::vector<CounterView>{};
  view.latency->max_bound = kInf;
  std::string line = FormatTopLine(view);
  EXPECT_TRUE(line.ends_with(" max_ms=+Inf shards_up=3 shards=3 top=")) << line;
}

// --- JSON -------------------------------------------------------------------

TEST(TopJsonTest, HoldsTheViewWithRoundedNumbers) {
  nlohmann::json json = nlohmann::json::parse(FormatTopJson(FullView()));
  EXPECT_EQ(json["time"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(json["seconds"], 1.0);
  EXPECT_EQ(json["total"], 12345);
  EXPECT_EQ(json["totalPerSecond"], 61230.0);
  EXPECT_EQ(json["incrementsPerSecond"], 2041.0);
  EXPECT_EQ(json["latencyMs"], nlohmann::json({{"p50", 0.213}, {"p99", 1.3}, {"max", 2.5}}));
  EXPECT_EQ(json["shardsUp"], 3);
  EXPECT_EQ(
      json["shards"][1],
      nlohmann::json(
          {{"shardId", 1}, {"state", "up"}, {"count", 8000}, {"share", 0.5}, {"perSecond", -3.5}}));
  EXPECT_EQ(json["counters"][0],
            nlohmann::json({{"counter", "page:home"}, {"total", 5120}, {"perSecond", 170.0}}));
  EXPECT_TRUE(json["counters"][1]["perSecond"].is_null());
}

TEST(TopJsonTest, IsNullWhereNothingIsKnown) {
  nlohmann::json json = nlohmann::json::parse(FormatTopJson(SparseView()));
  for (const char* key :
       {"total", "totalPerSecond", "incrementsPerSecond", "latencyMs", "counters"}) {
    EXPECT_TRUE(json[key].is_null()) << key;
  }
  EXPECT_EQ(json["shards"][1]["state"], "down");
  EXPECT_TRUE(json["shards"][1]["count"].is_null());
}

// --- Numbers ------------------------------------------------------------------

TEST(TopNumbersTest, FormatRate) {
  struct Case {
    double rate;
    bool signed_change;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{{2041.4, false, "2041"},
                                         {99.95, false, "100"},  // rounds to 100.0
                                         {12.54, false, "12.5"},
                                         {0.26, false, "0.3"},
                                         {0, false, "0"},
                                         {0.01, true, "0"},
                                         {170, true, "+170"},
                                         {-3.5, true, "-3.5"},
                                         {-3.5, false, "-3.5"},
                                         {-0.01, true, "0"}}) {
    EXPECT_EQ(FormatRate(c.rate, c.signed_change), c.expected) << c.rate;
  }
}

TEST(TopNumbersTest, FormatDuration) {
  struct Case {
    double seconds;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{{0.000213, "0.213 ms"},
                                         {0.0013, "1.30 ms"},
                                         {0.0125, "12.5 ms"},
                                         {0.25, "250 ms"},
                                         {2.5, "2.50 s"},
                                         {0, "0.000 ms"}}) {
    EXPECT_EQ(FormatDuration(c.seconds), c.expected) << c.seconds;
  }
}

// --- Widths -----------------------------------------------------------------------

TEST(TopWidthTest, CountsCharactersNotBytesNorColourCodes) {
  EXPECT_EQ(DisplayWidth(""), 0);
  EXPECT_EQ(DisplayWidth("abc"), 3);
  EXPECT_EQ(DisplayWidth("\u2588\u2588"), 2);
  EXPECT_EQ(DisplayWidth("\x1b[32mup\x1b[0m"), 2);
  EXPECT_EQ(DisplayWidth("\x1b[2Kx"), 1);
}

TEST(TopWidthTest, FitToWidthCutsAndClosesAColour) {
  struct Case {
    std::string text;
    int width;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {"abcdef", 3, "abc"},
           {"abc", 3, "abc"},
           {"abc", 10, "abc"},
           {"abc", 0, ""},
           {"\u2588\u2588\u2588", 2, "\u2588\u2588"},
           {"\x1b[31mdown\x1b[0m", 2, "\x1b[31mdo\x1b[0m"},
           {"\x1b[31mdown\x1b[0m!", 4, "\x1b[31mdown\x1b[0m"},
           {"ab\x1b[31mcd\x1b[0m", 2, "ab\x1b[31m\x1b[0m"},
       }) {
    EXPECT_EQ(FitToWidth(c.text, c.width), c.expected) << c.text << " in " << c.width;
  }
}

// --- The screen ------------------------------------------------------------------

ScreenOptions Options(int width, int height) {
  ScreenOptions options;
  options.url = "http://127.0.0.1:4000";
  options.interval_seconds = 1;
  options.width = width;
  options.height = height;
  return options;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

TEST(TopScreenTest, FitsEveryTerminalSize) {
  for (bool color : {false, true}) {
    for (const TopView& view : {FullView(), SparseView()}) {
      for (int width : {1, 8, 20, 40, 60, 80, 100, 250}) {
        for (int height : {1, 3, 5, 8, 12, 24, 60}) {
          ScreenOptions options = Options(width, height);
          options.color = color;
          options.error = "cannot connect to http://127.0.0.1:4000: Connection refused";
          std::vector<std::string> lines = FormatTopScreen(view, options);
          EXPECT_LE(static_cast<int>(lines.size()), height) << width << "x" << height;
          for (const std::string& line : lines) {
            EXPECT_LE(DisplayWidth(line), width) << width << "x" << height << ": " << line;
          }
        }
      }
    }
  }
}

TEST(TopScreenTest, TheTitleEndsAtTheRightEdge) {
  for (int width : {20, 60, 100}) {
    std::vector<std::string> lines = FormatTopScreen(FullView(), Options(width, 24));
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(DisplayWidth(lines[0]), width) << lines[0];
    EXPECT_TRUE(lines[0].ends_with("q: quit")) << lines[0];
  }
  std::vector<std::string> lines = FormatTopScreen(FullView(), Options(100, 24));
  EXPECT_TRUE(lines[0].starts_with("shardctl top  http://127.0.0.1:4000  every 1 s  08:00:00 UTC"))
      << lines[0];
  // What does not fit is left out whole, not cut.
  lines = FormatTopScreen(FullView(), Options(50, 24));
  EXPECT_EQ(lines[0], "shardctl top  http://127.0.0.1:4000        q: quit");
  lines = FormatTopScreen(FullView(), Options(15, 24));
  EXPECT_EQ(lines[0], "shardctl top");
}

TEST(TopScreenTest, ShowsRatesLatencyShardsAndCounters) {
  std::string screen = Joined(FormatTopScreen(FullView(), Options(100, 30)));
  EXPECT_NE(screen.find("increments/s  2041"), std::string::npos) << screen;
  EXPECT_NE(screen.find("p50 0.213 ms  p99 1.30 ms  max <= 2.50 ms"), std::string::npos) << screen;
  EXPECT_NE(screen.find("total         12345       +61230/s"), std::string::npos) << screen;
  EXPECT_NE(screen.find("shards        3 of 3 up"), std::string::npos) << screen;
  EXPECT_NE(screen.find("SHARD  STATE"), std::string::npos) << screen;
  EXPECT_NE(screen.find("50.0%"), std::string::npos) << screen;
  EXPECT_NE(screen.find("\u2588"), std::string::npos) << screen;  // the bars
  EXPECT_NE(screen.find("page:home"), std::string::npos) << screen;
  EXPECT_NE(screen.find("+170"), std::string::npos) << screen;
  EXPECT_EQ(screen.find("\x1b["), std::string::npos) << "no colour unless asked";
}

TEST(TopScreenTest, TheFirstScreenIsMeasuring) {
  TopView view = FullView();
  view.seconds = 0;
  view.increments_per_second.reset();
  view.latency.reset();
  std::string screen = Joined(FormatTopScreen(view, Options(100, 30)));
  EXPECT_NE(screen.find("increments/s  -  (measuring)"), std::string::npos) << screen;
}

TEST(TopScreenTest, SaysWhatIsMissingAndWhy) {
  ScreenOptions options = Options(120, 30);
  options.error = "cannot connect; retrying every 1 s (since 08:00:05)";
  std::string screen = Joined(FormatTopScreen(SparseView(), options));
  EXPECT_NE(screen.find("! cannot connect; retrying every 1 s"), std::string::npos) << screen;
  EXPECT_NE(screen.find("increments/s  -  (the server has no GET /metrics)"), std::string::npos)
      << screen;
  EXPECT_NE(screen.find("total         -  (shard 1 cannot be reached)"), std::string::npos)
      << screen;
  EXPECT_NE(screen.find("down"), std::string::npos) << screen;
  EXPECT_NE(screen.find("connection refused"), std::string::npos) << screen;
  EXPECT_NE(screen.find("shards        1 of 2 up"), std::string::npos) << screen;
}

TEST(TopScreenTest, ColoursStatesAndErrorsWhenAsked) {
  ScreenOptions options = Options(120, 30);
  options.color = true;
  options.error = "gone";
  std::string screen = Joined(FormatTopScreen(SparseView(), options));
  EXPECT_NE(screen.find("\x1b[32mup"), std::string::npos) << screen;
  EXPECT_NE(screen.find("\x1b[31mdown"), std::string::npos) << screen;
  EXPECT_NE(screen.find("\x1b[31m! gone"), std::string::npos) << screen;
}

TEST(TopScreenTest, AShortTerminalCutsTheCountersFirstAndSaysHowManyMore) {
  TopView view = FullView();
  view.counters->clear();
  for (int i = 0; i < 20; ++i) view.counters->push_back({"c" + std::to_string(i), 100 - i, 1});
  // Summary 4 lines, blank, shard header + 3 rows, blank, counter header: 11.
  std::vector<std::string> lines = FormatTopScreen(view, Options(80, 15));
  ASSERT_EQ(lines.size(), 15u);
  EXPECT_EQ(lines[10].substr(0, 7), "COUNTER");
  EXPECT_TRUE(lines[11].starts_with("c0 ")) << lines[11];
  EXPECT_EQ(lines[14], "... 17 more");
  // Shorter still: the shards are cut too.
  lines = FormatTopScreen(view, Options(80, 7));
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_TRUE(lines[5].starts_with("SHARD")) << lines[5];
  EXPECT_EQ(lines[6], "... 3 more");
}

TEST(TopScreenTest, LongCounterNamesAreCutToLeaveTheNumbersVisible) {
  TopView view = FullView();
  view.counters = std::vector<CounterView>{{std::string(150, 'n'), 77, 5}};
  std::vector<std::string> lines = FormatTopScreen(view, Options(60, 30));
  const std::string& row = lines.back();
  EXPECT_EQ(DisplayWidth(row), 60) << row;
  EXPECT_TRUE(row.ends_with("  77       +5.0")) << row;
  EXPECT_NE(row.find("n~"), std::string::npos) << row;
}

TEST(TopScreenTest, NoBarsWhenTheTerminalIsNarrow) {
  std::string screen = Joined(FormatTopScreen(FullView(), Options(50, 30)));
  EXPECT_EQ(screen.find("\u2588"), std::string::npos) << screen;
}

}  // namespace
}  // namespace shardctl::cmd
