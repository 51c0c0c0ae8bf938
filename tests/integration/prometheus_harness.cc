#include "tests/integration/prometheus_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace shardctl::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A port nobody listens on now (HeldPort closes it again).
int FreePort() { return HeldPort().port(); }

// `text` as a single-quoted word for sh.
std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// `text` percent-encoded for a URL's query string.
std::string UrlEncode(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return encoded;
}

// `text` as a YAML double-quoted string.
std::string YamlQuote(const std::string& text) {
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

// Prometheus's configuration: every job scraped every second.
std::string ConfigFor(const std::vector<ScrapeJob>& jobs,
                      const std::vector<std::string>& rule_files) {
  std::string config =
      "global:\n"
      "  scrape_interval: 1s\n"
      "  scrape_timeout: 900ms\n"
      "  evaluation_interval: 1s\n";
  if (!rule_files.empty()) {
    config += "rule_files:\n";
    for (const std::string& file : rule_files) config += "  - " + YamlQuote(file) + "\n";
  }
  config += "scrape_configs:\n";
  for (const ScrapeJob& job : jobs) {
    config += "  - job_name: " + YamlQuote(job.name) + "\n";
    if (!job.bearer_token_file.empty()) {
      config += "    authorization:\n";
      config += "      type: Bearer\n";
      config += "      credentials_file: " + YamlQuote(job.bearer_token_file) + "\n";
    }
    config += "    static_configs:\n      - targets:\n";
    for (const std::string& target : job.targets) config += "          - " + target + "\n";
  }
  return config;
}

// The number Prometheus writes as a string ("1.5", "NaN", "+Inf").
double ParseNumber(const std::string& text) { return std::strtod(text.c_str(), nullptr); }

// Reads one exposition line into `sample`. Returns false if it is malformed.
bool ParseSampleLine(const std::string& line, Sample& sample) {
  size_t at = 0;
  auto is_name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  };
  while (at < line.size() && is_name_char(line[at])) ++at;
  if (at == 0) return false;
  sample.labels["__name__"] = line.substr(0, at);
  if (at < line.size() && line[at] == '{') {
    ++at;
    for (;;) {
      if (at < line.size() && line[at] == '}') break;
      size_t name_start = at;
      while (at < line.size() && is_name_char(line[at])) ++at;
      std::string name = line.substr(name_start, at - name_start);
      if (name.empty() || line.compare(at, 2, "=\"") != 0) return false;
      at += 2;
      std::string value;
      for (; at < line.size() && line[at] != '"'; ++at) {
        if (line[at] == '\\' && at + 1 < line.size()) {
          ++at;
          value += line[at] == 'n' ? '\n' : line[at];
        } else {
          value += line[at];
        }
      }
      if (at >= line.size()) return false;
      ++at;  // the closing quote
      sample.labels[name] = value;
      if (at < line.size() && line[at] == ',') ++at;
    }
    ++at;  // the closing brace
  }
  std::istringstream rest(line.substr(at));
  std::string value;
  if (!(rest >> value)) return false;
  char* end = nullptr;
  sample.value = std::strtod(value.c_str(), &end);
  return end != value.c_str() && *end == '\0';
}

}  // namespace

std::vector<Sample> ParseTextFormat(const std::string& exposition) {
  std::vector<Sample> samples;
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    Sample sample;
    if (ParseSampleLine(line, sample)) {
      samples.push_back(std::move(sample));
    } else {
      ADD_FAILURE() << "not a sample line of the text format: " << line;
    }
  }
  return samples;
}

PrometheusServer::PrometheusServer(const std::vector<ScrapeJob>& jobs,
                                   const std::vector<std::string>& rule_files)
    : port_(FreePort()) {
  const std::string config_path = dir_.path() + "/prometheus.yml";
  std::ofstream(config_path) << ConfigFor(jobs, rule_files);
  std::vector<std::string> args = {
      "prometheus",
      "--config.file=" + config_path,
      "--storage.tsdb.path=" + dir_.path() + "/data",
      "--web.listen-address=" + host_port(),
  };
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string log_path = dir_.path() + "/prometheus.log";
  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    // Prometheus dies with the test, even one that crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    // Its working directory is its own: nothing it writes lands elsewhere.
    if (::chdir(dir_.path().c_str()) != 0) ::_exit(127);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  // Ready once /-/ready answers 200: the TSDB is open and the rules and
  // scrapes are running (before that it answers 503).
  HttpConnection connection(host_port());
  auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline) {
    if (connection.Get("/-/ready").status == 200) {
      ready_ = true;
      return;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // it exited: no use waiting
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(20ms);  // between readiness checks
  }
  ADD_FAILURE() << "prometheus did not become ready; its log:\n" << Log();
}

PrometheusServer::~PrometheusServer() {
  if (::testing::Test::HasFailure()) {
    std::string log = Log();
    if (log.size() > 8000) log = "...\n" + log.substr(log.size() - 8000);
    std::fprintf(stderr, "--- log of prometheus on %s ---\n%s\n", host_port().c_str(), log.c_str());
  }
  Stop();
}

void PrometheusServer::Stop() {
  ready_ = false;
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  if (!Reap(pid_, 10s)) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
}

std::string PrometheusServer::Log() const {
  std::ifstream file(dir_.path() + "/prometheus.log");
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

Reply PrometheusServer::Get(const std::string& path_and_query) {
  return HttpConnection(host_port()).Get(path_and_query);
}

QueryResult PrometheusServer::Query(const std::string& promql) {
  QueryResult result;
  Reply reply = Get("/api/v1/query?query=" + UrlEncode(promql));
  result.body = reply.body;
  nlohmann::json answer = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (reply.status == 0) {
    result.error = "no answer from prometheus";
  } else if (answer.is_discarded() || !answer.is_object()) {
    result.error = "HTTP " + std::to_string(reply.status) + ", not JSON: " + reply.body;
  } else if (answer.value("status", "") != "success") {
    result.error = answer.value("errorType", "") + ": " + answer.value("error", "");
  } else {
    const nlohmann::json& data = answer["data"];
    const std::string type = data.value("resultType", "");
    if (type == "scalar") {
      result.samples.push_back({{}, ParseNumber(data["result"][1].get<std::string>())});
    } else if (type == "vector") {
      for (const nlohmann::json& series : data["result"]) {
        Sample sample;
        for (const auto& [name, value] : series["metric"].items()) {
          sample.labels[name] = value.get<std::string>();
        }
        sample.value = ParseNumber(series["value"][1].get<std::string>());
        result.samples.push_back(std::move(sample));
      }
    } else {
      result.error = "an answer of type \"" + type + "\", not a vector or a scalar";
    }
  }
  return result;
}

QueryResult PrometheusServer::QueryUntil(const std::string& promql,
                                         const std::function<bool(const QueryResult&)>& done,
                                         std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  QueryResult result = Query(promql);
  while (!done(result) && Clock::now() < deadline) {
    // Between queries: new samples arrive with each scrape, once a second.
    std::this_thread::sleep_for(100ms);
    result = Query(promql);
  }
  return result;
}

RunResult Promtool::CheckMetrics(const std::string& exposition) {
  TempDir dir;
  const std::string path = dir.path() + "/metrics.txt";
  std::ofstream(path) << exposition;
  return RunCommand("promtool check metrics < " + ShellQuote(path));
}

RunResult Promtool::CheckRules(const std::string& path) {
  return RunCommand("promtool check rules " + ShellQuote(path));
}

RunResult Promtool::CheckConfig(const std::string& path) {
  return RunCommand("promtool check config " + ShellQuote(path));
}

RunResult Promtool::TestRules(const std::string& path) {
  return RunCommand("promtool test rules " + ShellQuote(path));
}

}  // namespace shardctl::testing
