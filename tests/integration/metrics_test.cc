// GET /metrics, and what dist/ builds on it, checked with Prometheus's own
// tools: promtool on the alerting rules and the sample config (and the rules'
// unit tests: each alert fires on its condition and no other does), the
// Grafana dashboard and the rules naming only metrics and labels serve has,
// `promtool check metrics` on a running serve's answer, the token and
// --no-metrics, and a real Prometheus scraping serve under load.
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"
#include "tests/integration/prometheus_harness.h"

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Labels = std::set<std::string>;

constexpr char kToken[] = "metrics-token_7";

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& contents) {
  std::string path = dir.path() + "/" + name;
  std::ofstream(path) << contents;
  return path;
}

// ---------------------------------------------------------------------------
// The metrics serve has (issue 15's plan, README "Metrics"), with their labels.

const std::map<std::string, Labels>& ServedMetrics() {
  static const auto* metrics = new std::map<std::string, Labels>{
      {"shardctl_build_info", {"version", "role"}},
      {"shardctl_http_requests_total", {"listener", "route", "code"}},
      {"shardctl_http_request_duration_seconds", {"listener", "route"}},
      {"shardctl_http_connections_open", {"listener"}},
      {"shardctl_increments_total", {"shard"}},
      {"shardctl_counters", {"shard"}},
      {"shardctl_idempotency_keys", {"shard"}},
      {"shardctl_idempotency_replays_total", {"shard"}},
      {"shardctl_compactions_total", {"shard"}},
      {"shardctl_journal_write_duration_seconds", {}},
      {"shardctl_journal_fsync_duration_seconds", {}},
      {"shardctl_shard_up", {"shard"}},
      {"shardctl_shard_calls_total", {"shard", "outcome"}},
      {"process_cpu_seconds_total", {}},
      {"process_resident_memory_bytes", {}},
      {"process_open_fds", {}},
      {"process_start_time_seconds", {}},
  };
  return *metrics;
}

bool IsHistogram(const std::string& family) { return family.ends_with("_duration_seconds"); }

// The labels Prometheus adds to every series it scrapes.
const Labels kTargetLabels = {"job", "instance"};

// The family a series name belongs to ("x_seconds_bucket" -> "x_seconds"),
// and the labels that series may have. Returns false for a name serve does
// not have (`up`, Prometheus's own, counts as served: it has no labels of
// its own).
bool LabelsOfSeries(const std::string& series, std::string& family, Labels& labels) {
  labels = kTargetLabels;
  if (series == "up") {
    family = series;
    return true;
  }
  const auto& metrics = ServedMetrics();
  if (auto it = metrics.find(series); it != metrics.end() && !IsHistogram(series)) {
    family = series;
    labels.insert(it->second.begin(), it->second.end());
    return true;
  }
  for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
    if (!series.ends_with(suffix)) continue;
    std::string base = series.substr(0, series.size() - suffix.size());
    if (auto it = metrics.find(base); it != metrics.end() && IsHistogram(base)) {
      family = base;
      labels.insert(it->second.begin(), it->second.end());
      if (suffix == std::string("_bucket")) labels.insert("le");
      return true;
    }
  }
  return false;
}

// Every label any served series has, with Prometheus's.
Labels AnyServedLabel() {
  Labels all = kTargetLabels;
  all.insert("le");
  for (const auto& [family, labels] : ServedMetrics()) all.insert(labels.begin(), labels.end());
  return all;
}

// ---------------------------------------------------------------------------
// What a PromQL expression names: a small reader of PromQL, enough for the
// expressions of a dashboard and of alerting rules (Grafana's variables may
// stand in strings and ranges).

struct PromqlNames {
  std::map<std::string, Labels> selectors;  // series name -> the labels it matches on
  Labels grouping;                          // by / without / on / ignoring (...)
};

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}

class PromqlReader {
 public:
  explicit PromqlReader(const std::string& expr) : expr_(expr) {}

  PromqlNames Read() {
    static const std::set<std::string> kGrouping = {"by",       "without",    "on",
                                                    "ignoring", "group_left", "group_right"};
    // Operators, and the aggregations, which may come before their `by (...)`.
    static const std::set<std::string> kKeywords = {
        "and",   "or",           "unless",  "bool", "offset",  "inf",    "nan",
        "sum",   "min",          "max",     "avg",  "group",   "stddev", "stdvar",
        "count", "count_values", "bottomk", "topk", "quantile"};
    while (at_ < expr_.size()) {
      char c = expr_[at_];
      if (c == '"' || c == '\'' || c == '`') {
        SkipString();
      } else if (c == '[') {
        at_ = expr_.find(']', at_);  // a range: "[5m]", "[$__rate_interval]"
        at_ = at_ == std::string::npos ? expr_.size() : at_ + 1;
      } else if (c == '{') {
        ReadMatchers(names_.selectors[""]);  // a selector without a name: not ours
      } else if (c == '$' || std::isdigit(static_cast<unsigned char>(c))) {
        ++at_;  // a variable or a number (0.99, 1e3): its letters are no name
        while (at_ < expr_.size() && (IsIdentChar(expr_[at_]) || expr_[at_] == '.')) ++at_;
      } else if (IsIdentStart(c)) {
        std::string word = Word();
        SkipSpace();
        bool call = at_ < expr_.size() && expr_[at_] == '(';
        std::string lower = word;
        for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (kGrouping.count(lower)) {
          if (call) ReadLabelList(names_.grouping);
        } else if (call || kKeywords.count(lower)) {
          // a function, an aggregation or an operator
        } else {
          Labels& matched = names_.selectors[word];
          if (at_ < expr_.size() && expr_[at_] == '{') ReadMatchers(matched);
        }
      } else {
        ++at_;
      }
    }
    return names_;
  }

 private:
  std::string Word() {
    size_t start = at_;
    while (at_ < expr_.size() && IsIdentChar(expr_[at_])) ++at_;
    return expr_.substr(start, at_ - start);
  }
  void SkipSpace() {
    while (at_ < expr_.size() && std::isspace(static_cast<unsigned char>(expr_[at_]))) ++at_;
  }
  void SkipString() {
    char quote = expr_[at_++];
    while (at_ < expr_.size() && expr_[at_] != quote) at_ += expr_[at_] == '\\' ? 2 : 1;
    ++at_;
  }
  // {name="value", name=~"regex", ...}: the names.
  void ReadMatchers(Labels& labels) {
    ++at_;
    while (at_ < expr_.size() && expr_[at_] != '}') {
      char c = expr_[at_];
      if (c == '"' || c == '\'' || c == '`') {
        SkipString();
      } else if (IsIdentStart(c)) {
        labels.insert(Word());
      } else {
        ++at_;
      }
    }
    ++at_;
  }
  // (label, label, ...)
  void ReadLabelList(Labels& labels) {
    ++at_;
    while (at_ < expr_.size() && expr_[at_] != ')') {
      if (IsIdentStart(expr_[at_])) {
        labels.insert(Word());
      } else {
        ++at_;
      }
    }
    ++at_;
  }

  const std::string& expr_;
  size_t at_ = 0;
  PromqlNames names_;
};

// Checks that `expr` selects only served series, matches them only on labels
// they have, and groups only by labels served series have; `where` names it in
// failures. Adds the families it selects to `used`.
void ExpectOnlyServedMetrics(const std::string& expr, const std::string& where,
                             std::set<std::string>& used) {
  PromqlNames names = PromqlReader(expr).Read();
  EXPECT_FALSE(names.selectors.empty()) << where << " selects no series: " << expr;
  for (const auto& [series, matched] : names.selectors) {
    std::string family;
    Labels labels;
    if (!LabelsOfSeries(series, family, labels)) {
      ADD_FAILURE() << where << " selects \"" << series
                    << "\", which serve does not have: " << expr;
      continue;
    }
    used.insert(family);
    for (const std::string& label : matched) {
      EXPECT_TRUE(labels.count(label)) << where << " matches " << series << " on label \"" << label
                                       << "\", which it does not have: " << expr;
    }
  }
  const Labels any = AnyServedLabel();
  for (const std::string& label : names.grouping) {
    EXPECT_TRUE(any.count(label)) << where << " groups by label \"" << label
                                  << "\", which no served series has: " << expr;
  }
}

// ---------------------------------------------------------------------------
// The alerting rules of dist/prometheus-rules.yml, read as this project writes
// them: "- alert: NAME", then its keys; `expr` inline or as a block scalar.

struct AlertRule {
  std::string name;
  std::string expr;
  std::string text;  // every line of the rule
};

size_t Indent(const std::string& line) {
  size_t indent = line.find_first_not_of(' ');
  return indent == std::string::npos ? line.size() : indent;
}

std::vector<AlertRule> AlertRulesIn(const std::string& yaml) {
  std::vector<AlertRule> rules;
  std::istringstream lines(yaml);
  size_t block_indent = std::string::npos;  // the indent of `expr:` while in its block
  for (std::string line; std::getline(lines, line);) {
    std::string trimmed = line.substr(Indent(line));
    if (trimmed.starts_with("- alert:")) {
      rules.push_back({trimmed.substr(8), "", ""});
      size_t first = rules.back().name.find_first_not_of(' ');
      rules.back().name.erase(0, first);
      block_indent = std::string::npos;
    }
    if (rules.empty()) continue;
    AlertRule& rule = rules.back();
    rule.text += line + "\n";
    if (block_indent != std::string::npos) {
      if (trimmed.empty() || Indent(line) > block_indent) {
        rule.expr += trimmed + "\n";
        continue;
      }
      block_indent = std::string::npos;
    }
    if (trimmed.starts_with("expr:")) {
      std::string value = trimmed.substr(5);
      value.erase(0, value.find_first_not_of(' '));
      if (value == "|" || value == "|-" || value == ">" || value == ">-") {
        block_indent = Indent(line);
      } else {
        rule.expr = value;
      }
    }
  }
  return rules;
}

const std::vector<std::string> kAlerts = {
    "ShardctlDown",      "ShardctlShardDown",     "ShardctlShardCallTimeouts",
    "ShardctlFsyncSlow", "ShardctlHighErrorRate", "ShardctlSlowIncrements",
    "ShardctlRestarting"};

TEST(MetricsDistTest, AlertingRulesPassPromtoolCheckRules) {
  RunResult checked = Promtool::CheckRules(SourcePath("dist/prometheus-rules.yml"));
  EXPECT_EQ(checked.exit_code, 0) << checked.out;
  EXPECT_NE(checked.out.find("SUCCESS: " + std::to_string(kAlerts.size()) + " rules found"),
            std::string::npos)
      << checked.out;
}

// The sample config names the rules file beside it, so this checks both.
TEST(MetricsDistTest, SamplePrometheusConfigPassesPromtoolCheckConfig) {
  RunResult checked = Promtool::CheckConfig(SourcePath("dist/prometheus.yml"));
  EXPECT_EQ(checked.exit_code, 0) << checked.out;
  EXPECT_NE(checked.out.find("is valid prometheus config file"), std::string::npos) << checked.out;
  EXPECT_NE(checked.out.find("SUCCESS: 1 rule files found"), std::string::npos) << checked.out;
  // The token option is there, commented, for a serve with --token-file.
  std::string config = ReadExistingFile(SourcePath("dist/prometheus.yml"));
  EXPECT_NE(config.find("#   credentials_file: "), std::string::npos) << config;
}

TEST(MetricsDistTest, AlertingRulesNameOnlyServedMetricsAndSayWhatIsWrong) {
  std::vector<AlertRule> rules = AlertRulesIn(ReadExistingFile(SourcePath("dist/prometheus-rules.yml")));
  std::vector<std::string> names;
  std::set<std::string> used;
  for (const AlertRule& rule : rules) {
    names.push_back(rule.name);
    ASSERT_FALSE(rule.expr.empty()) << "no expr read for " << rule.name << ":\n" << rule.text;
    ExpectOnlyServedMetrics(rule.expr, "alert " + rule.name, used);
    EXPECT_TRUE(rule.text.find("severity: critical") != std::string::npos ||
                rule.text.find("severity: warning") != std::string::npos)
        << rule.text;
    EXPECT_NE(rule.text.find("summary: "), std::string::npos) << rule.text;
    EXPECT_NE(rule.text.find("description: "), std::string::npos) << rule.text;
  }
  EXPECT_EQ(names, kAlerts);
  for (const char* family : {"up", "shardctl_shard_up", "shardctl_journal_fsync_duration_seconds",
                             "shardctl_http_requests_total"}) {
    EXPECT_TRUE(used.count(family)) << family;
  }
}

// One series for the rules' unit tests: `values` in promtool's expanding
// notation ("0+10x30": 0, 10, ... 300), one a minute.
std::string InputSeries(const std::string& series, const std::string& values) {
  return "      - series: '" + series + "'\n        values: '" + values + "'\n";
}

// promtool's unit tests of the rules: for each alert an instance on which its
// condition holds (and a healthy one beside it). After 20 minutes each alert
// fires for its instance and nothing else fires; at 1 minute nothing fires
// yet (every condition that lasts needs its `for:`).
TEST(MetricsDistTest, EachAlertFiresOnItsConditionAndNoOtherDoes) {
  const std::string job = "job=\"shardctl-aggregator\",";
  std::string series;
  // ShardctlDown: instance "gone" stops answering scrapes.
  series += InputSeries("up{" + job + "instance=\"gone\"}", "1 1 0x28");
  series += InputSeries("up{" + job + "instance=\"ok\"}", "1x30");
  // ShardctlShardDown: the aggregator on "ok" marks shard 1 down.
  series += InputSeries("shardctl_shard_up{" + job + "instance=\"ok\",shard=\"0\"}", "1x30");
  series += InputSeries("shardctl_shard_up{" + job + "instance=\"ok\",shard=\"1\"}", "1 1 0x28");
  // ShardctlShardCallTimeouts: 5 in 105 calls to shard 2 time out.
  const std::string calls = "shardctl_shard_calls_total{" + job + "instance=\"ok\",";
  series += InputSeries(calls + "shard=\"2\",outcome=\"ok\"}", "0+100x30");
  series += InputSeries(calls + "shard=\"2\",outcome=\"timeout\"}", "0+5x30");
  series += InputSeries(calls + "shard=\"0\",outcome=\"ok\"}", "0+100x30");
  series += InputSeries(calls + "shard=\"0\",outcome=\"timeout\"}", "0x30");
  // ShardctlFsyncSlow: every fsync on "disk" takes between 0.512 and 1.024 s.
  const std::string fsync = "shardctl_journal_fsync_duration_seconds_bucket{" + job;
  series += InputSeries(fsync + "instance=\"disk\",le=\"0.512\"}", "0x30");
  series += InputSeries(fsync + "instance=\"disk\",le=\"1.024\"}", "0+10x30");
  series += InputSeries(fsync + "instance=\"disk\",le=\"+Inf\"}", "0+10x30");
  series += InputSeries(fsync + "instance=\"ok\",le=\"0.001\"}", "0+10x30");
  series += InputSeries(fsync + "instance=\"ok\",le=\"+Inf\"}", "0+10x30");
  // ShardctlHighErrorRate: 5 in 105 requests to "errors" answered 503.
  const std::string requests = "shardctl_http_requests_total{" + job;
  series += InputSeries(
      requests + "instance=\"errors\",listener=\"aggregator\",route=\"/increment\",code=\"200\"}",
      "0+100x30");
  series += InputSeries(
      requests + "instance=\"errors\",listener=\"aggregator\",route=\"/increment\",code=\"503\"}",
      "0+5x30");
  series += InputSeries(
      requests + "instance=\"ok\",listener=\"aggregator\",route=\"/increment\",code=\"200\"}",
      "0+100x30");
  // ShardctlSlowIncrements: increments on "slow" take between 0.25 and 0.5 s.
  const std::string latency = "shardctl_http_request_duration_seconds_bucket{" + job +
                              "listener=\"aggregator\",route=\"/increment\",";
  series += InputSeries(latency + "instance=\"slow\",le=\"0.25\"}", "0x30");
  series += InputSeries(latency + "instance=\"slow\",le=\"0.5\"}", "0+10x30");
  series += InputSeries(latency + "instance=\"slow\",le=\"+Inf\"}", "0+10x30");
  series += InputSeries(latency + "instance=\"ok\",le=\"0.001\"}", "0+10x30");
  series += InputSeries(latency + "instance=\"ok\",le=\"+Inf\"}", "0+10x30");
  // ShardctlRestarting: "flapping" starts again every minute.
  series += InputSeries("process_start_time_seconds{" + job + "instance=\"flapping\"}", "0+60x30");
  series += InputSeries("process_start_time_seconds{" + job + "instance=\"ok\"}", "5x30");

  const std::map<std::string, std::string> firing_on = {{"ShardctlDown", "gone"},
                                                        {"ShardctlShardDown", "ok"},
                                                        {"ShardctlShardCallTimeouts", "ok"},
                                                        {"ShardctlFsyncSlow", "disk"},
                                                        {"ShardctlHighErrorRate", "errors"},
                                                        {"ShardctlSlowIncrements", "slow"},
                                                        {"ShardctlRestarting", "flapping"}};
  ASSERT_EQ(firing_on.size(), kAlerts.size());
  std::string expected;
  for (const auto& [alert, instance] : firing_on) {
    expected += "          - labels: '{alertname=\"" + alert + "\",instance=\"" + instance +
                "\"}'\n            value: 1\n";
  }
  const std::string firing = "count by (alertname, instance) (ALERTS{alertstate=\"firing\"})";
  TempDir dir;
  std::string tests = WriteFile(
      dir, "rules_test.yml",
      "rule_files:\n  - " + SourcePath("dist/prometheus-rules.yml") +
          "\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n" + series +
          "    promql_expr_test:\n"
          "      - expr: '" +
          firing +
          "'\n        eval_time: 1m\n        exp_samples: []\n"
          "      - expr: '" +
          firing + "'\n        eval_time: 20m\n        exp_samples:\n" + expected);
  RunResult tested = Promtool::TestRules(tests);
  EXPECT_EQ(tested.exit_code, 0) << tested.out << "\n" << ReadExistingFile(tests);
  EXPECT_NE(tested.out.find("SUCCESS"), std::string::npos) << tested.out;
}

// The dashboard imports into any Grafana: its data source is a variable,
// never a fixed uid; every panel queries, only metrics and labels serve has,
// and together the panels show every metric serve has.
TEST(MetricsDistTest, GrafanaDashboardImportsAnywhereAndShowsOnlyServedMetrics) {
  std::string text = ReadExistingFile(SourcePath("dist/grafana-dashboard.json"));
  nlohmann::json dashboard = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(dashboard.is_object()) << "dist/grafana-dashboard.json is not JSON";
  EXPECT_GE(dashboard.value("schemaVersion", 0), 36);
  EXPECT_FALSE(dashboard.value("title", "").empty());

  bool datasource_variable = false;
  for (const nlohmann::json& variable : dashboard["templating"]["list"]) {
    if (variable.value("type", "") == "datasource" && variable.value("name", "") == "datasource") {
      EXPECT_EQ(variable.value("query", ""), "prometheus");
      datasource_variable = true;
    }
  }
  EXPECT_TRUE(datasource_variable) << "no `datasource` variable of type datasource";

  const nlohmann::json kDatasource = {{"type", "prometheus"}, {"uid", "${datasource}"}};
  std::set<std::string> used;
  std::set<int> ids;
  size_t panels = 0;
  for (const nlohmann::json& panel : dashboard["panels"]) {
    const std::string title = panel.value("title", "");
    EXPECT_TRUE(ids.insert(panel.value("id", 0)).second)
        << "two panels with id " << panel.value("id", 0);
    const nlohmann::json grid = panel.value("gridPos", nlohmann::json::object());
    EXPECT_LE(grid.value("x", 99) + grid.value("w", 99), 24) << title;
    if (panel.value("type", "") == "row") continue;
    ++panels;
    EXPECT_FALSE(title.empty()) << panel.dump();
    EXPECT_EQ(panel["datasource"], kDatasource) << title;
    ASSERT_TRUE(panel.contains("targets") && !panel["targets"].empty()) << title;
    for (const nlohmann::json& target : panel["targets"]) {
      EXPECT_EQ(target["datasource"], kDatasource) << title;
      std::string expr = target.value("expr", "");
      ASSERT_FALSE(expr.empty()) << title;
      ExpectOnlyServedMetrics(expr, "panel \"" + title + "\"", used);
    }
  }
  EXPECT_GE(panels, 11u);
  for (const auto& [family, labels] : ServedMetrics()) {
    EXPECT_TRUE(used.count(family)) << "no panel shows " << family;
  }
}

// ---------------------------------------------------------------------------
// GET /metrics of a running serve.

// A GET on a fresh connection to `host_port`, with the bearer token if given.
Reply Fetch(const std::string& host_port, const std::string& path, const std::string& token = "") {
  size_t colon = host_port.rfind(':');
  httplib::Client client(host_port.substr(0, colon), std::stoi(host_port.substr(colon + 1)));
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  httplib::Result result = client.Get(path, headers);
  if (!result) return {};
  return {result->status, result->body, result->get_header_value("Content-Type")};
}

// The sum of the samples named `name` whose labels include `labels`, and how
// many there were.
struct Total {
  double sum = 0;
  int series = 0;
};
Total SumOf(const std::vector<Sample>& samples, const std::string& name,
            const std::map<std::string, std::string>& labels = {}) {
  Total total;
  for (const Sample& sample : samples) {
    if (sample.name() != name) continue;
    bool match = true;
    for (const auto& [label, value] : labels) {
      auto it = sample.labels.find(label);
      match = match && it != sample.labels.end() && it->second == value;
    }
    if (!match) continue;
    total.sum += sample.value;
    ++total.series;
  }
  return total;
}

void ExpectLintFree(const Reply& metrics, const std::string& where) {
  EXPECT_EQ(metrics.status, 200) << where << ": " << metrics.body;
  EXPECT_TRUE(metrics.content_type.starts_with("text/plain")) << where << metrics.content_type;
  EXPECT_NE(metrics.content_type.find("version=0.0.4"), std::string::npos)
      << where << metrics.content_type;
  RunResult lint = Promtool::CheckMetrics(metrics.body);
  EXPECT_EQ(lint.exit_code, 0) << where << ":\n" << lint.out;
  EXPECT_EQ(lint.out, "") << where << ": promtool check metrics found problems";
}

TEST(MetricsTest, ServeAnswersLintFreeMetricsThatCountItsRequests) {
  Cluster serve({"--in-memory"});
  ASSERT_TRUE(serve.ready());
  HttpConnection client(serve.aggregator());
  constexpr int kIncrements = 7;
  for (int i = 0; i < kIncrements; ++i) {
    ASSERT_EQ(client.Post("/increment", R"({"value":1})").status, 200);
  }
  ASSERT_EQ(client.Get("/total").status, 200);
  ASSERT_EQ(client.Get("/no-such-route").status, 404);

  Reply metrics = Fetch(serve.aggregator(), "/metrics");
  ExpectLintFree(metrics, "the aggregator's /metrics");
  std::vector<Sample> samples = ParseTextFormat(metrics.body);

  Total build = SumOf(samples, "shardctl_build_info", {{"version", SHARDCTL_VERSION}});
  EXPECT_EQ(build.series, 1) << metrics.body;
  EXPECT_EQ(build.sum, 1);
  const std::map<std::string, std::string> increments = {
      {"listener", "aggregator"}, {"route", "/increment"}, {"code", "200"}};
  EXPECT_EQ(SumOf(samples, "shardctl_http_requests_total", increments).sum, kIncrements)
      << metrics.body;
  EXPECT_EQ(SumOf(samples, "shardctl_http_requests_total", {{"route", "/increment"}}).sum,
            kIncrements);
  EXPECT_EQ(SumOf(samples, "shardctl_http_requests_total",
                  {{"listener", "aggregator"}, {"route", "/total"}, {"code", "200"}})
                .sum,
            1);
  EXPECT_EQ(SumOf(samples, "shardctl_http_requests_total",
                  {{"listener", "aggregator"}, {"route", "other"}, {"code", "404"}})
                .sum,
            1);
  EXPECT_EQ(SumOf(samples, "shardctl_http_request_duration_seconds_count",
                  {{"listener", "aggregator"}, {"route", "/increment"}})
                .sum,
            kIncrements);
  EXPECT_EQ(SumOf(samples, "shardctl_http_request_duration_seconds_bucket",
                  {{"listener", "aggregator"}, {"route", "/increment"}, {"le", "+Inf"}})
                .sum,
            kIncrements);
  // Each increment added 1: the shards applied 7 whichever way they count.
  EXPECT_EQ(SumOf(samples, "shardctl_increments_total").sum, kIncrements);
  EXPECT_EQ(SumOf(samples, "shardctl_shard_up").series, 3) << metrics.body;
  for (const char* family : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                             "process_open_fds", "process_start_time_seconds"}) {
    EXPECT_EQ(SumOf(samples, family).series, 1) << family;
  }
  // Every sample is one of the served families.
  for (const Sample& sample : samples) {
    std::string family;
    Labels labels;
    EXPECT_TRUE(LabelsOfSeries(sample.name(), family, labels) && sample.name() != "up")
        << sample.name() << " is not in the plan's list";
  }

  // A shard's own listener answers too.
  ExpectLintFree(Fetch(serve.shard(0), "/metrics"), "shard 0's /metrics");
}

TEST(MetricsTest, TheTokenGuardsMetricsButNotHealthz) {
  TempDir dir;
  std::string token_file = WriteFile(dir, "token", std::string(kToken) + "\n");
  Cluster serve({"--in-memory", "--token-file", token_file});
  ASSERT_TRUE(serve.ready());
  for (const std::string& listener : {serve.aggregator(), serve.shard(1)}) {
    EXPECT_EQ(Fetch(listener, "/metrics").status, 401) << listener;
    EXPECT_EQ(Fetch(listener, "/metrics", "wrong").status, 401) << listener;
    EXPECT_EQ(Fetch(listener, "/healthz").status, 200) << listener;
    ExpectLintFree(Fetch(listener, "/metrics", kToken), listener + " with the token");
  }
}

TEST(MetricsTest, NoMetricsAnswers404AndServesTheRest) {
  Cluster serve({"--in-memory", "--no-metrics"});
  ASSERT_TRUE(serve.ready());
  for (const std::string& listener : {serve.aggregator(), serve.shard(0)}) {
    Reply metrics = Fetch(listener, "/metrics");
    EXPECT_EQ(metrics.status, 404) << listener << metrics.body;
    EXPECT_EQ(metrics.body.find("shardctl_"), std::string::npos) << metrics.body;
  }
  EXPECT_EQ(HttpConnection(serve.aggregator()).Post("/increment", R"({"value":1})").status, 200);
  EXPECT_EQ(Fetch(serve.aggregator(), "/healthz").status, 200);
}

// ---------------------------------------------------------------------------
// A real Prometheus scraping serve.

// Increments by 1 through the aggregator at `host_port`, one request after
// another on a keep-alive connection, from a thread of its own until Stop()
// or 30 s.
class Load {
 public:
  explicit Load(const std::string& host_port)
      : started_(Clock::now()), thread_([this, host_port] {
          HttpConnection client(host_port);
          while (!stop_.load() && Clock::now() - started_ < 30s) {
            Reply answer = client.Post("/increment", R"({"value":1})");
            (answer.status == 200 ? acknowledged_ : failed_).fetch_add(1);
          }
          stopped_.store(Clock::now().time_since_epoch().count());
        }) {}
  ~Load() { Stop(); }

  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::chrono::duration<double> Elapsed() const {
    Clock::rep stopped = stopped_.load();
    Clock::time_point end = stopped ? Clock::time_point(Clock::duration(stopped)) : Clock::now();
    return end - started_;
  }
  // Acknowledged increments per second so far.
  double PerSecond() const { return static_cast<double>(acknowledged_.load()) / Elapsed().count(); }
  int64_t acknowledged() const { return acknowledged_.load(); }
  int64_t failed() const { return failed_.load(); }

 private:
  const Clock::time_point started_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acknowledged_{0};
  std::atomic<int64_t> failed_{0};
  std::atomic<Clock::rep> stopped_{0};
  std::thread thread_;  // last: it starts once the rest is ready
};

bool AllEqual(const QueryResult& result, size_t count, double value) {
  if (!result.error.empty() || result.samples.size() != count) return false;
  for (const Sample& sample : result.samples) {
    if (sample.value != value) return false;
  }
  return true;
}

std::string Describe(const QueryResult& result) {
  if (!result.error.empty()) return "error: " + result.error;
  std::string text;
  for (const Sample& sample : result.samples) {
    std::string labels;
    for (const auto& [name, value] : sample.labels) {
      labels += (labels.empty() ? "" : ",") + name + "=\"" + value + "\"";
    }
    char number[64];
    std::snprintf(number, sizeof number, "%.6g", sample.value);
    text += "{" + labels + "} " + number + "\n";
  }
  return text.empty() ? "(no samples)\n" : text;
}

// A dashboard expression as Grafana would send it (with every instance and
// job selected, and a range that fits a 1 s scrape interval).
std::string AsGrafanaSends(std::string expr) {
  const std::pair<std::string, std::string> variables[] = {
      {"$__rate_interval", "5s"}, {"$job", ".*"}, {"$instance", ".*"}};
  for (const auto& [variable, value] : variables) {
    for (size_t at; (at = expr.find(variable)) != std::string::npos;) {
      expr.replace(at, variable.size(), value);
    }
  }
  return expr;
}

// Prometheus scrapes serve's aggregator and one of its shards every second
// while a client increments; the rate Prometheus computes is the client's,
// its count ends at the client's, every dashboard query and alerting rule
// runs on the real data, and no alert fires.
TEST(MetricsTest, PrometheusScrapesServeUnderLoadAndSeesItsRate) {
  Cluster serve;  // with a journal: the fsync histograms have samples
  ASSERT_TRUE(serve.ready());
  PrometheusServer prometheus(
      {{"shardctl-aggregator", {serve.aggregator()}, ""}, {"shardctl-shard", {serve.shard(0)}, ""}},
      {SourcePath("dist/prometheus-rules.yml")});
  ASSERT_TRUE(prometheus.ready());

  QueryResult up = prometheus.QueryUntil(R"(up{job=~"shardctl-.*"})",
                                         [](const QueryResult& r) { return AllEqual(r, 2, 1); });
  std::printf("[ prometheus ] up{job=~\"shardctl-.*\"}:\n%s", Describe(up).c_str());
  ASSERT_TRUE(AllEqual(up, 2, 1)) << Describe(up) << up.body;

  Load load(serve.aggregator());
  // The rate over the last 5 s, once those 5 s (and a scrape more) lie
  // within the load.
  const std::string kRate =
      R"(sum(rate(shardctl_http_requests_total{job="shardctl-aggregator",route="/increment",code=~"2.."}[5s])))";
  QueryResult rate = prometheus.QueryUntil(
      kRate,
      [&load](const QueryResult& r) {
        return load.Elapsed() > 6s && r.error.empty() && r.samples.size() == 1 &&
               r.samples[0].value > 0;
      },
      20s);
  const double measured = load.PerSecond();
  std::printf(
      "[ prometheus ] %s = %s[ prometheus ] the test's client: %.1f increments/s "
      "(%lld in %.1f s)\n",
      kRate.c_str(), Describe(rate).c_str(), measured, static_cast<long long>(load.acknowledged()),
      load.Elapsed().count());
  ASSERT_EQ(rate.samples.size(), 1u) << Describe(rate) << rate.body;
  EXPECT_GT(rate.samples[0].value, 0);
  EXPECT_GT(rate.samples[0].value, measured / 3) << "prometheus saw far fewer than were sent";
  EXPECT_LT(rate.samples[0].value, measured * 3) << "prometheus saw far more than were sent";

  // Every dashboard query runs on the real data while the load runs; the
  // increments panel shows it.
  nlohmann::json dashboard =
      nlohmann::json::parse(ReadExistingFile(SourcePath("dist/grafana-dashboard.json")));
  size_t queries = 0;
  for (const nlohmann::json& panel : dashboard["panels"]) {
    if (!panel.contains("targets")) continue;
    for (const nlohmann::json& target : panel["targets"]) {
      std::string expr = AsGrafanaSends(target.value("expr", ""));
      QueryResult result = prometheus.Query(expr);
      EXPECT_EQ(result.error, "") << panel.value("title", "") << ": " << expr;
      ++queries;
      if (panel.value("title", "") == "Increments/s") {
        ASSERT_EQ(result.samples.size(), 1u) << Describe(result);
        EXPECT_GT(result.samples[0].value, 0) << expr;
      }
    }
  }
  EXPECT_GE(queries, 11u);

  load.Stop();
  EXPECT_EQ(load.failed(), 0);
  // Once a scrape follows the last increment, Prometheus holds the exact count.
  const std::string kCount =
      R"(sum(shardctl_http_requests_total{job="shardctl-aggregator",route="/increment",code="200"}))";
  const double sent = static_cast<double>(load.acknowledged());
  QueryResult count =
      prometheus.QueryUntil(kCount, [sent](const QueryResult& r) { return AllEqual(r, 1, sent); });
  std::printf("[ prometheus ] %s = %s", kCount.c_str(), Describe(count).c_str());
  EXPECT_TRUE(AllEqual(count, 1, sent)) << Describe(count) << " the client sent " << sent;

  QueryResult shards = prometheus.Query(R"(shardctl_shard_up{job="shardctl-aggregator"})");
  std::printf("[ prometheus ] shardctl_shard_up{job=\"shardctl-aggregator\"}:\n%s",
              Describe(shards).c_str());
  EXPECT_TRUE(AllEqual(shards, 3, 1)) << Describe(shards);
  std::set<std::string> shard_ids;
  for (const Sample& sample : shards.samples) shard_ids.insert(sample.labels.at("shard"));
  EXPECT_EQ(shard_ids, (std::set<std::string>{"0", "1", "2"}));

  // The alerting rules evaluate without error on the real series (they run
  // every second), and none fires.
  nlohmann::json rules;
  auto deadline = Clock::now() + 10s;
  size_t healthy = 0;
  do {
    healthy = 0;
    rules = nlohmann::json::parse(prometheus.Get("/api/v1/rules").body, nullptr, false);
    if (rules.is_object() && rules.contains("data")) {
      for (const nlohmann::json& group : rules["data"]["groups"]) {
        for (const nlohmann::json& rule : group["rules"]) {
          healthy += rule.value("health", "") == "ok" ? 1 : 0;
        }
      }
    }
    if (healthy == kAlerts.size()) break;
    std::this_thread::sleep_for(100ms);  // the rules are evaluated once a second
  } while (Clock::now() < deadline);
  ASSERT_EQ(healthy, kAlerts.size()) << rules.dump(2);
  for (const nlohmann::json& rule : rules["data"]["groups"][0]["rules"]) {
    EXPECT_NE(rule.value("state", ""), "firing") << rule.dump(2);
    EXPECT_FALSE(rule["labels"].value("severity", "").empty()) << rule.dump(2);
    EXPECT_FALSE(rule["annotations"].value("summary", "").empty()) << rule.dump(2);
    EXPECT_FALSE(rule["annotations"].value("description", "").empty()) << rule.dump(2);
  }
}

}  // namespace
}  // namespace shardctl::testing
